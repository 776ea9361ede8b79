//! A `&mut` to a diesel connection cannot cross a boundary; the error is on the connection type.
use dbscope::detach_ids;

#[detach_ids]
fn report(id: i32, conn: &mut diesel::PgConnection) {}

fn main() {}
