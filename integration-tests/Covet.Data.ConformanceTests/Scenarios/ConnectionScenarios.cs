using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbConnection: states and StateChange events, open twice, properties when closed and open, ChangeDatabase, GetSchema.</summary>
internal static class ConnectionScenarios
{
    public static IEnumerable<Scenario> All()
    {
        yield return Scenario.Sync("conn.closed-properties", r =>
        {
            var c = r.New();
            r.R.Val("State", c.State);
            r.R.Try("Database", () => c.Database);
            r.R.Try("DataSource", () => c.DataSource);
            r.R.Try("ConnectionTimeout", () => c.ConnectionTimeout);
            r.R.Try("ServerVersion", () => c.ServerVersion);
            r.R.Try("CanCreateBatch", () => c.CanCreateBatch);
        });

        yield return Scenario.Sync("conn.open-properties", r =>
        {
            var c = r.Open();
            r.R.Val("State", c.State);
            r.R.Try("Database", () => c.Database);
            r.R.Try("DataSource", () => c.DataSource);
            r.R.Try("ConnectionTimeout", () => c.ConnectionTimeout);
            r.R.Try("ServerVersion empty", () => string.IsNullOrEmpty(c.ServerVersion));
        });

        yield return Scenario.Sync("conn.properties-after-close", r =>
        {
            var c = r.Open();
            c.Close();
            r.R.Val("State", c.State);
            r.R.Try("Database", () => c.Database);
            r.R.Try("ServerVersion", () => c.ServerVersion);
        });

        yield return Scenario.Sync("conn.open-close-events", r =>
        {
            var c = r.New();
            r.R.Events(c);
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
            r.R.Try("Close", c.Close);
            r.R.Val("State", c.State);
            r.R.Try("Dispose", c.Dispose);
        });

        yield return Scenario.Async("conn.open-async-close-async-events", async r =>
        {
            var c = r.New();
            r.R.Events(c);
            await r.R.TryAsync("OpenAsync", () => c.OpenAsync());
            r.R.Val("State", c.State);
            await r.R.TryAsync("CloseAsync", c.CloseAsync);
            r.R.Val("State", c.State);
            await r.R.TryAsync("DisposeAsync", async () => await c.DisposeAsync());
        });

        yield return Scenario.Sync("conn.dispose-open-events", r =>
        {
            var c = r.New();
            r.R.Events(c);
            c.Open();
            r.R.Try("Dispose", c.Dispose);
            r.R.Val("State", c.State);
            r.R.Try("Dispose again", c.Dispose);
        });

        yield return Scenario.Async("conn.dispose-async-open-events", async r =>
        {
            var c = r.New();
            r.R.Events(c);
            await c.OpenAsync();
            await r.R.TryAsync("DisposeAsync", async () => await c.DisposeAsync());
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.open-twice", r =>
        {
            var c = r.New();
            r.R.Events(c);
            r.R.Try("Open", c.Open);
            r.R.Try("Open again", c.Open);
            r.R.Val("State", c.State);
            r.R.Try("query", () => r.Scalar(c, "SELECT 1"));
        });

        yield return Scenario.Async("conn.open-async-twice", async r =>
        {
            var c = r.New();
            r.R.Events(c);
            await r.R.TryAsync("OpenAsync", () => c.OpenAsync());
            await r.R.TryAsync("OpenAsync again", () => c.OpenAsync());
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.close-twice", r =>
        {
            var c = r.New();
            r.R.Events(c);
            c.Open();
            r.R.Try("Close", c.Close);
            r.R.Try("Close again", c.Close);
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.close-never-opened", r =>
        {
            var c = r.New();
            r.R.Events(c);
            r.R.Try("Close", c.Close);
            r.R.Try("Dispose", c.Dispose);
        });

        yield return Scenario.Sync("conn.reopen-after-close", r =>
        {
            var c = r.New();
            r.R.Events(c);
            for (var i = 0; i < 3; i++)
            {
                r.R.Try($"Open {i}", c.Open);
                r.R.Try($"query {i}", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
                r.R.Try($"Close {i}", c.Close);
            }
        });

        yield return Scenario.Sync("conn.open-after-dispose", r =>
        {
            var c = r.New();
            r.R.Events(c);
            c.Open();
            c.Dispose();
            r.R.Try("Open after Dispose", c.Open);
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.change-database-same", r =>
        {
            var c = r.Open();
            var database = c.Database;
            r.R.Events(c);
            r.R.Try("ChangeDatabase", () => c.ChangeDatabase(database));
            r.R.Try("Database", () => c.Database);
            r.R.Val("State", c.State);
            r.R.Try("query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
            c.Close();
            var next = r.Open();
            r.R.Try("next Database", () => next.Database);
        });

        yield return Scenario.Sync("conn.change-database-missing", r =>
        {
            var c = r.Open();
            r.R.Events(c);
            r.R.Try("ChangeDatabase", () => c.ChangeDatabase("covet_no_such_db"));
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.change-database-closed", r =>
        {
            var c = r.New();
            r.R.Try("ChangeDatabase", () => c.ChangeDatabase("x"));
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.get-schema", r =>
        {
            var c = r.Open();
            r.R.Try("GetSchema()", () => c.GetSchema());
            r.R.Try("GetSchema(MetaDataCollections)", () => c.GetSchema(DbMetaDataCollectionNames.MetaDataCollections));
            r.R.Try("GetSchema(DataSourceInformation) columns", () => c.GetSchema(DbMetaDataCollectionNames.DataSourceInformation).Columns.Count);
            r.R.Try("GetSchema(Restrictions)", () => c.GetSchema(DbMetaDataCollectionNames.Restrictions).Rows.Count);
            r.R.Try("GetSchema(unknown)", () => c.GetSchema("NoSuchCollection"));
        });

        yield return Scenario.Async("conn.get-schema-async", async r =>
        {
            var c = r.Open();
            await r.R.TryAsync("GetSchemaAsync()", () => c.GetSchemaAsync());
            await r.R.TryAsync("GetSchemaAsync(MetaDataCollections)", () => c.GetSchemaAsync(DbMetaDataCollectionNames.MetaDataCollections));
        });

        yield return Scenario.Sync("conn.get-schema-closed", r =>
        {
            var c = r.New();
            r.R.Try("GetSchema()", () => c.GetSchema());
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.begin-transaction-closed", r =>
        {
            var c = r.New();
            r.R.Try("BeginTransaction", () => c.BeginTransaction());
        });

        yield return Scenario.Sync("conn.create-command-closed-then-open", r =>
        {
            var c = r.New();
            var command = r.Own(c.CreateCommand());
            command.CommandText = "SELECT 1";
            r.R.Try("execute closed", () => command.ExecuteScalar());
            c.Open();
            r.R.Try("execute open", () => Convert.ToInt64(command.ExecuteScalar()));
            r.R.Val("Connection is c", ReferenceEquals(command.Connection, c));
        });

        yield return Scenario.Sync("conn.create-command-properties", r =>
        {
            var c = r.New();
            var command = r.Own(c.CreateCommand());
            r.R.Val("CommandText", command.CommandText);
            r.R.Val("CommandType", command.CommandType);
            r.R.Val("UpdatedRowSource", command.UpdatedRowSource);
            r.R.Val("Transaction", command.Transaction);
            r.R.Val("Connection is c", ReferenceEquals(command.Connection, c));
            r.R.Val("Parameters.Count", command.Parameters.Count);
        });

        yield return Scenario.Sync("conn.enlist-null", r =>
        {
            var c = r.Open();
            r.R.Try("EnlistTransaction(null)", () => c.EnlistTransaction(null));
            r.R.Try("query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
        });

        yield return Scenario.Sync("conn.enlist-closed", r =>
        {
            var c = r.New();
            r.R.Try("EnlistTransaction(null)", () => c.EnlistTransaction(null));
        });

        yield return Scenario.Sync("conn.statechange-handler-throws", r =>
        {
            var c = r.New();
            c.StateChange += (_, e) => { if (e.CurrentState == ConnectionState.Open) throw new ApplicationException("handler"); };
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.statechange-unsubscribe", r =>
        {
            var c = r.New();
            var count = 0;
            StateChangeEventHandler handler = (_, _) => count++;
            c.StateChange += handler;
            c.Open();
            c.StateChange -= handler;
            c.Close();
            r.R.Val("events", count);
        });

        yield return Scenario.Sync("conn.two-open-at-once", r =>
        {
            var a = r.Open();
            var b = r.Open();
            r.R.Val("a", a.State);
            r.R.Val("b", b.State);
            r.R.Try("a query", () => Convert.ToInt64(r.Scalar(a, "SELECT 1")));
            r.R.Try("b query", () => Convert.ToInt64(r.Scalar(b, "SELECT 2")));
        }).Pool(2);

        yield return Scenario.Async("conn.open-async-cancelled", async r =>
        {
            var c = r.New();
            r.R.Events(c);
            await r.R.TryAsync("OpenAsync(cancelled)", () => c.OpenAsync(new CancellationToken(true)));
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("conn.provider-factory", r =>
        {
            var c = r.New();
            r.R.Val("GetFactory(connection) is the factory", ReferenceEquals(DbProviderFactories.GetFactory(c), r.S.Path == PathKind.Factory ? r.S.Factory : DbProviderFactories.GetFactory(c)));
        }).OnlyPath(PathKind.Factory);
    }
}
