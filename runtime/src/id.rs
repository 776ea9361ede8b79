//! Typed ids: a row's primary key that remembers which table it belongs to.
//!
//! An [`Id<App>`] is what crosses boundaries (spawned tasks, queued jobs, long
//! async flows) instead of the `App` row itself: it cannot go stale, holds no
//! session, serialises as the bare key, and cannot be mixed up with an
//! `Id<User>` at compile time. It works directly in diesel queries and needs
//! no derive or schema change on the model.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use diesel::associations::{HasTable, Identifiable};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::dsl::{Find, Limit};
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::query_dsl::methods::{FindDsl, LimitDsl, LoadQuery};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{SingleValue, SqlType};
use diesel::{Connection, RunQueryDsl};

use crate::error::Error;

/// The primary key of a row of `T`'s table: `Id<App>` holds an `i32` (the
/// default key type), `Id<App, i64>` or `Id<App, String>` other keys.
///
/// - Ids of different tables are different types: a function taking
///   `Id<App>` does not accept an `Id<User>`.
/// - It works wherever diesel takes the key: `apps::table.find(id)`,
///   `apps::id.eq(id)`, `insert_into(..).values(apps::owner.eq(id))`, and it can
///   be loaded from a query (`.select(apps::id).load::<Id<App>>(conn)`).
/// - With the `serde` feature (on by default) it serialises as the bare key,
///   so a job payload `{"app": 7}` deserialises into `Id<App>`.
/// - `Display` and `Debug` print the key.
/// - It is `Send`, `Sync`, `Copy` (for `Copy` keys), `Eq`, `Ord` and `Hash`
///   whatever `T` is: it never holds a `T`.
///
/// No derive is needed on the model; `T` only names the table.
///
/// ```
/// use dbscope_runtime::Id;
/// struct App; // any model type
///
/// let id = Id::<App>::new(7);
/// assert_eq!(id.key(), 7);
/// assert_eq!(id, Id::from(7));
/// assert_eq!(id.to_string(), "7");
/// assert_eq!(format!("{id:?}"), "7");
/// ```
pub struct Id<T: ?Sized, K = i32> {
    key: K,
    table: PhantomData<fn() -> PhantomData<T>>,
}

impl<T: ?Sized, K> Id<T, K> {
    /// The id of the row of `T` whose primary key is `key`.
    ///
    /// ```
    /// struct App;
    /// let id = dbscope_runtime::Id::<App, i64>::new(42);
    /// assert_eq!(id.key(), 42);
    /// ```
    pub const fn new(key: K) -> Self {
        Id {
            key,
            table: PhantomData,
        }
    }

    /// The key, by value (for `Copy` keys such as integers).
    ///
    /// ```
    /// struct App;
    /// assert_eq!(dbscope_runtime::Id::<App>::new(3).key() + 1, 4);
    /// ```
    pub fn key(&self) -> K
    where
        K: Copy,
    {
        self.key
    }

    /// The key, borrowed.
    ///
    /// ```
    /// struct App;
    /// let id = dbscope_runtime::Id::<App, String>::new("a1".to_owned());
    /// assert_eq!(id.key_ref(), "a1");
    /// ```
    pub fn key_ref(&self) -> &K {
        &self.key
    }

    /// The key, consuming the id.
    ///
    /// ```
    /// struct App;
    /// let id = dbscope_runtime::Id::<App, String>::new("a1".to_owned());
    /// assert_eq!(id.into_key(), "a1");
    /// ```
    pub fn into_key(self) -> K {
        self.key
    }

    /// The id of `row`, from its `#[derive(Identifiable)]` primary key.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use dbscope_runtime::Id;
    ///
    /// diesel::table! { apps (id) { id -> Integer, name -> Text } }
    ///
    /// #[derive(Queryable, Identifiable)]
    /// struct App { id: i32, name: String }
    ///
    /// let app = App { id: 5, name: "reports".into() };
    /// assert_eq!(Id::of(&app), Id::<App>::new(5));
    /// ```
    pub fn of<'a>(row: &'a T) -> Self
    where
        &'a T: Identifiable<Id = &'a K>,
        K: Clone + 'a,
    {
        Id::new(row.id().clone())
    }

    /// The query that finds this row: `T`'s table `.find(key)`. Unlike
    /// writing `apps::table.find(id)`, the table comes from the id's type, so
    /// it cannot be the wrong one.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use dbscope_runtime::Id;
    ///
    /// diesel::table! { apps (id) { id -> Integer, name -> Text } }
    /// #[derive(Queryable, Identifiable, Debug)]
    /// struct App { id: i32, name: String }
    ///
    /// let mut conn = SqliteConnection::establish(":memory:")?;
    /// diesel::sql_query("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").execute(&mut conn)?;
    /// diesel::sql_query("INSERT INTO apps VALUES (1, 'reports')").execute(&mut conn)?;
    /// let name: String = Id::<App>::new(1).find().select(apps::name).first(&mut conn)?;
    /// assert_eq!(name, "reports");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find(self) -> Find<T::Table, K>
    where
        T: HasTable,
        T::Table: FindDsl<K>,
    {
        FindDsl::find(T::table(), self.key)
    }
}

impl<T: ?Sized, K> From<K> for Id<T, K> {
    /// ```
    /// struct App;
    /// let id: dbscope_runtime::Id<App> = 9.into();
    /// assert_eq!(id.key(), 9);
    /// ```
    fn from(key: K) -> Self {
        Id::new(key)
    }
}

impl<T: ?Sized, K: Clone> Clone for Id<T, K> {
    fn clone(&self) -> Self {
        Id::new(self.key.clone())
    }
}

impl<T: ?Sized, K: Copy> Copy for Id<T, K> {}

impl<T: ?Sized, K: PartialEq> PartialEq for Id<T, K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<T: ?Sized, K: Eq> Eq for Id<T, K> {}

impl<T: ?Sized, K: PartialOrd> PartialOrd for Id<T, K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.key.partial_cmp(&other.key)
    }
}

impl<T: ?Sized, K: Ord> Ord for Id<T, K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl<T: ?Sized, K: Hash> Hash for Id<T, K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl<T: ?Sized, K: fmt::Display> fmt::Display for Id<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
}

impl<T: ?Sized, K: fmt::Debug> fmt::Debug for Id<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
}

// Diesel: an id is its key wherever diesel takes or returns a value.

impl<T: ?Sized, K, ST> AsExpression<ST> for Id<T, K>
where
    K: AsExpression<ST>,
    ST: SqlType + TypedExpressionType,
{
    type Expression = K::Expression;

    fn as_expression(self) -> Self::Expression {
        self.key.as_expression()
    }
}

impl<'a, T: ?Sized, K, ST> AsExpression<ST> for &'a Id<T, K>
where
    &'a K: AsExpression<ST>,
    ST: SqlType + TypedExpressionType,
{
    type Expression = <&'a K as AsExpression<ST>>::Expression;

    fn as_expression(self) -> Self::Expression {
        (&self.key).as_expression()
    }
}

impl<T: ?Sized, K, ST, DB> ToSql<ST, DB> for Id<T, K>
where
    K: ToSql<ST, DB>,
    DB: Backend,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.key.to_sql(out)
    }
}

impl<T: ?Sized, K, ST, DB> FromSql<ST, DB> for Id<T, K>
where
    K: FromSql<ST, DB>,
    DB: Backend,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        K::from_sql(bytes).map(Id::new)
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        K::from_nullable_sql(bytes).map(Id::new)
    }
}

impl<T: ?Sized, K, ST, DB> Queryable<ST, DB> for Id<T, K>
where
    Self: FromSql<ST, DB>,
    ST: SingleValue,
    DB: Backend,
{
    type Row = Self;

    fn build(row: Self) -> deserialize::Result<Self> {
        Ok(row)
    }
}

#[cfg(feature = "serde")]
impl<T: ?Sized, K: serde::Serialize> serde::Serialize for Id<T, K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.key.serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: ?Sized, K: serde::Deserialize<'de>> serde::Deserialize<'de> for Id<T, K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(Id::new)
    }
}

/// A model row that can be loaded by its primary key `K` over connection `C`:
/// every type with `#[derive(Identifiable)]` (diesel's `HasTable`) whose
/// table's single-column primary key takes a `K` and whose `Queryable` matches
/// the table's columns. Implemented automatically; name it in `where` clauses
/// of generic code (`where App: LoadById<C>`).
///
/// ```
/// use diesel::prelude::*;
/// use dbscope_runtime::{Id, LoadById};
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
/// #[derive(Queryable, Identifiable, Debug)]
/// struct App { id: i32, name: String }
///
/// fn name_of<C: Connection>(conn: &mut C, id: Id<App>) -> Result<String, dbscope_runtime::Error>
/// where
///     App: LoadById<C>,
/// {
///     Ok(dbscope_runtime::load_by_id(conn, &id)?.name)
/// }
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// diesel::sql_query("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").execute(&mut conn)?;
/// diesel::sql_query("INSERT INTO apps VALUES (1, 'reports')").execute(&mut conn)?;
/// assert_eq!(name_of(&mut conn, Id::new(1))?, "reports");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be loaded by id (key type `{K}`) over `{C}`",
    label = "not a model row whose primary key takes `{K}`",
    note = "`#[load]` and `load_by_id` take a model row: a type with `#[derive(Queryable, Identifiable)]` whose table's primary key is one column of a type that `{K}` converts to"
)]
pub trait LoadById<C, K = i32>: Sized {
    /// Loads the row whose primary key is `key`.
    ///
    /// # Errors
    /// Diesel's `NotFound` when there is no such row, or the query's error.
    fn load_by_key(conn: &mut C, key: K) -> diesel::QueryResult<Self>;
}

// Not recommended in errors: a type that is not a row gets the message of
// `LoadById` itself, not a list of everything that implements `HasTable`.
#[diagnostic::do_not_recommend]
impl<M, C, K> LoadById<C, K> for M
where
    C: Connection,
    M: HasTable,
    M::Table: FindDsl<K>,
    Find<M::Table, K>: LimitDsl,
    for<'q> Limit<Find<M::Table, K>>: LoadQuery<'q, C, M>,
{
    fn load_by_key(conn: &mut C, key: K) -> diesel::QueryResult<Self> {
        LimitDsl::limit(FindDsl::find(M::table(), key), 1).get_result(conn)
    }
}

/// Loads the row `id` names. `#[detach_ids]` calls it for each `#[load]`
/// parameter, in a short read-only unit of work.
///
/// # Errors
/// [`Phase::NotFound`](crate::Phase::NotFound) (see [`Error::not_found`]) when
/// the row does not exist (deleted, or never committed); the query's error
/// otherwise.
///
/// ```
/// use diesel::prelude::*;
/// use dbscope_runtime::{load_by_id, Id};
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
/// #[derive(Queryable, Identifiable, Debug)]
/// struct App { id: i32, name: String }
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// diesel::sql_query("CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").execute(&mut conn)?;
/// diesel::sql_query("INSERT INTO apps VALUES (1, 'reports')").execute(&mut conn)?;
/// assert_eq!(load_by_id(&mut conn, &Id::<App>::new(1))?.name, "reports");
/// assert!(load_by_id(&mut conn, &Id::<App>::new(2)).unwrap_err().is_not_found());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_by_id<M, K, C>(conn: &mut C, id: &Id<M, K>) -> Result<M, Error>
where
    M: LoadById<C, K>,
    K: Clone + fmt::Display,
{
    match M::load_by_key(conn, id.key.clone()) {
        Ok(row) => Ok(row),
        Err(diesel::result::Error::NotFound) => {
            Err(Error::not_found(model_name::<M>(), &id.to_string()))
        }
        Err(error) => Err(Error::from(error)),
    }
}

/// `App` for `my_app::models::App`.
fn model_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::{load_by_id, model_name, Id};

    struct App;
    struct User;

    #[test]
    fn ids_compare_hash_and_print_as_their_key() {
        let a = Id::<App>::new(1);
        let b: Id<App> = Id::from(2);
        assert!(a < b);
        assert_eq!(a, Id::new(1));
        assert_eq!(format!("{a} {b:?}"), "1 2");
        let set: std::collections::HashSet<Id<User, i64>> = [Id::new(1), Id::new(1)].into();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn model_names_drop_paths_and_generics() {
        assert_eq!(model_name::<App>(), "App");
        assert_eq!(model_name::<Vec<App>>(), "Vec");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn ids_work_in_diesel_queries() {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;

        diesel::table! { notes (id) { id -> Integer, owner -> Nullable<Integer>, body -> Text } }
        #[derive(Queryable, Identifiable, Debug)]
        struct Note {
            id: i32,
            owner: Option<i32>,
            body: String,
        }

        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, owner INTEGER, body TEXT NOT NULL);
             INSERT INTO notes VALUES (1, NULL, 'a'), (2, 1, 'b'), (3, 1, 'c');",
        )
        .unwrap();
        let first = Id::<Note>::new(1);
        // find, filter(eq), by value and by reference
        let note: Note = notes::table.find(first).first(&mut conn).unwrap();
        assert_eq!((note.id, note.owner, note.body.as_str()), (1, None, "a"));
        let children: Vec<Id<Note>> = notes::table
            .filter(notes::owner.eq(&first))
            .select(notes::id)
            .order(notes::id)
            .load(&mut conn)
            .unwrap();
        assert_eq!(children, [Id::new(2), Id::new(3)]);
        // nullable columns load as Option<Id<_>>
        let owners: Vec<Option<Id<Note>>> = notes::table
            .select(notes::owner)
            .order(notes::id)
            .load(&mut conn)
            .unwrap();
        assert_eq!(owners, [None, Some(first), Some(first)]);
        // insert with an id
        diesel::insert_into(notes::table)
            .values((
                notes::id.eq(Id::<Note>::new(4)),
                notes::owner.eq(Some(first)),
                notes::body.eq("d"),
            ))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(
            Id::of(&load_by_id(&mut conn, &Id::<Note>::new(4)).unwrap()),
            Id::new(4)
        );
        let missing = load_by_id(&mut conn, &Id::<Note>::new(9)).unwrap_err();
        assert!(missing.is_not_found());
        assert!(
            missing.to_string().contains("`Note` with id 9"),
            "{missing}"
        );
    }

    #[test]
    fn ids_are_send_and_sync_whatever_the_model() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Id<std::rc::Rc<App>>>();
    }
}
