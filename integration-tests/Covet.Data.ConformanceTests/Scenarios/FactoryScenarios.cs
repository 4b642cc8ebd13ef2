using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbProviderFactory's Create*/CanCreate* and DbDataSource's CreateConnection/OpenConnection/CreateCommand/CreateBatch.</summary>
internal static class FactoryScenarios
{
    public static IEnumerable<Scenario> All()
    {
        yield return Scenario.Sync("factory.create-members", r =>
        {
            var f = r.S.Factory;
            r.R.Try("CreateConnection state", () => f.CreateConnection()?.State);
            r.R.Try("CreateConnection string empty", () => string.IsNullOrEmpty(f.CreateConnection()?.ConnectionString));
            r.R.Try("CreateCommand timeout", () => f.CreateCommand()?.CommandTimeout);
            r.R.Try("CreateCommand text", () => f.CreateCommand()?.CommandText);
            r.R.Try("CreateParameter type", () => f.CreateParameter()?.GetType());
            r.R.Try("CreateConnectionStringBuilder type", () => f.CreateConnectionStringBuilder()?.GetType());
            r.R.Val("CanCreateBatch", f.CanCreateBatch);
            r.R.Val("CanCreateCommandBuilder", f.CanCreateCommandBuilder);
            r.R.Try("CreateCommandBuilder type", () => f.CreateCommandBuilder()?.GetType());
            r.R.Val("CanCreateDataAdapter", f.CanCreateDataAdapter);
            r.R.Try("CreateDataAdapter type", () => f.CreateDataAdapter()?.GetType());
            r.R.Val("CanCreateDataSourceEnumerator", f.CanCreateDataSourceEnumerator);
            r.R.Try("CreateDataSourceEnumerator", () => f.CreateDataSourceEnumerator());
            r.R.Try("CreateBatchCommand type", () => f.CreateBatchCommand().GetType());
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("factory.builder-roundtrip", r =>
        {
            var builder = r.S.Factory.CreateConnectionStringBuilder()!;
            r.R.Try("set ConnectionString", () => { builder.ConnectionString = r.S.ProviderConnectionString; });
            r.R.Try("set Covet keyword", () => { builder["Covet.MaxPoolSize"] = 3; });
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("factory.command-builder-data-adapter", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')");
            var adapter = r.S.Factory.CreateDataAdapter();
            if (adapter is null)
            {
                r.R.Val("adapter", null);
                return;
            }
            adapter.SelectCommand = r.Command(c, $"SELECT id, name FROM {table}");
            var data = new DataTable();
            r.R.Try("Fill", () => adapter.Fill(data));
            r.R.Val("rows", data.Rows.Count);
        }).OnlyPath(PathKind.Factory).On(Targets.Servers);

        yield return Scenario.Sync("datasource.create-and-open", r =>
        {
            var ds = r.S.DataSource;
            var c = r.Own(ds.CreateConnection());
            r.R.Val("State", c.State);
            r.R.Val("ConnectionString empty", string.IsNullOrEmpty(ds.ConnectionString));
            var open = r.R.Try("OpenConnection", ds.OpenConnection);
            if (open is not null)
            {
                r.Own(open);
                r.R.Val("opened State", open.State);
                r.R.Try("query", () => Convert.ToInt64(r.Scalar(open, "SELECT 1")));
                open.Close();
            }
        }).OnlyPath(PathKind.DataSource);

        yield return Scenario.Async("datasource.open-async", async r =>
        {
            var ds = r.S.DataSource;
            var open = await r.R.TryAsync("OpenConnectionAsync", async () => await ds.OpenConnectionAsync());
            r.R.Val("State", open?.State);
            if (open is not null)
                await open.DisposeAsync();
        }).OnlyPath(PathKind.DataSource);

        yield return Scenario.Async("datasource.create-command", async r =>
        {
            var ds = r.S.DataSource;
            var command = r.Own(ds.CreateCommand("SELECT 21 * 2"));
            r.R.Try("Connection", () => command.Connection);
            r.R.Try("ExecuteScalar", () => Convert.ToInt64(command.ExecuteScalar()));
            await r.R.TryAsync("ExecuteScalarAsync", async () => Convert.ToInt64(await command.ExecuteScalarAsync()));
            r.R.Try("ExecuteReader", () => { using var reader = command.ExecuteReader(); reader.Read(); return reader.GetValue(0); });
            r.R.Try("ExecuteReader twice in a row", () => { using var reader = command.ExecuteReader(); return reader.Read(); });
            r.R.Try("set Connection", () => { command.Connection = ds.CreateConnection(); });
            r.R.Try("set Transaction", () => { command.Transaction = null; });
            r.R.Try("Prepare", command.Prepare);
        }).OnlyPath(PathKind.DataSource);

        yield return Scenario.Sync("datasource.create-command-reader-holds-connection", r =>
        {
            var ds = r.S.DataSource;
            var command = r.Own(ds.CreateCommand("SELECT 1"));
            var reader = command.ExecuteReader();
            reader.Read();
            reader.Dispose();
            var c = r.Own(ds.OpenConnection());
            r.R.Try("query after reader disposed", () => Convert.ToInt64(r.Scalar(c, "SELECT 2")));
        }).OnlyPath(PathKind.DataSource);

        yield return Scenario.Sync("datasource.create-batch", r =>
        {
            var ds = r.S.DataSource;
            var batch = r.R.Try("CreateBatch", ds.CreateBatch);
            if (batch is null)
                return;
            r.Own(batch);
            // The base DbDataSource's batch cannot create batch commands: the provider's own factory then makes one.
            var command = r.R.Try("CreateBatchCommand", batch.CreateBatchCommand) ?? r.S.ProviderFactory.CreateBatchCommand();
            command.CommandText = "SELECT 5";
            batch.BatchCommands.Add(command);
            r.R.Try("Connection", () => batch.Connection);
            r.R.Try("ExecuteScalar", () => Convert.ToInt64(batch.ExecuteScalar()));
            r.R.Try("ExecuteNonQuery", () => batch.ExecuteNonQuery());
            r.R.Try("set Connection", () => { batch.Connection = ds.CreateConnection(); });
        }).OnlyPath(PathKind.DataSource)
          .Differs("CreateBatchCommand", "Covet's data-source batch implements CreateBatchCommand; the base DbDataSource's batch (MySqlConnector's data source uses it) throws NotImplementedException", TargetKind.MySql);

        yield return Scenario.Sync("datasource.disposed", r =>
        {
            var ds = r.S.DataSource;
            var live = r.Own(ds.OpenConnection());
            ds.Dispose();
            r.R.Val("live State", live.State);
            r.R.Try("live query", () => Convert.ToInt64(r.Scalar(live, "SELECT 1")));
            r.R.Try("CreateConnection after Dispose", () => ds.CreateConnection());
            r.R.Try("OpenConnection after Dispose", () => ds.OpenConnection());
            r.R.Try("Dispose again", ds.Dispose);
        }).OnlyPath(PathKind.DataSource).On(Targets.Persistent)
          .Differs("CreateConnection after Dispose", "A disposed CovetDataSource refuses new connections on every provider (ObjectDisposedException); NpgsqlDataSource and the default DbDataSource of Microsoft.Data.Sqlite still create one", TargetKind.Pg, TargetKind.SqliteFile)
          .Differs("OpenConnection after Dispose", "A disposed CovetDataSource refuses new connections on every provider (ObjectDisposedException); the default DbDataSource of Microsoft.Data.Sqlite still opens one", TargetKind.SqliteFile);
    }
}
