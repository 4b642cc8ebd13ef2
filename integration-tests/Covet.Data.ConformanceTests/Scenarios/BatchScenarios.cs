using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbBatch: creation, each Execute*, parameters, transactions, errors, no connection.</summary>
internal static class BatchScenarios
{
    private static DbBatch? Batch(Run r, DbConnection c, params string[] sql)
    {
        var batch = r.R.Try("CreateBatch", c.CreateBatch);
        if (batch is null)
            return null;
        r.Own(batch);
        foreach (var text in sql)
        {
            var command = batch.CreateBatchCommand();
            command.CommandText = text;
            batch.BatchCommands.Add(command);
        }
        return batch;
    }

    public static IEnumerable<Scenario> All()
    {
        yield return Scenario.Sync("batch.can-create", r =>
        {
            var c = r.New();
            r.R.Val("connection CanCreateBatch", c.CanCreateBatch);
            r.R.Try("connection CreateBatch", () => c.CreateBatch());
            r.R.Val("factory CanCreateBatch", r.S.Factory.CanCreateBatch);
            r.R.Try("factory CreateBatch", () => r.S.Factory.CreateBatch());
            r.R.Try("factory CreateBatchCommand type", () => r.S.Factory.CreateBatchCommand().GetType());
        });

        yield return Scenario.Sync("batch.properties", r =>
        {
            var c = r.Open();
            if (Batch(r, c) is not { } batch)
                return;
            r.R.Val("Timeout", batch.Timeout);
            r.R.Val("Connection is c", ReferenceEquals(batch.Connection, c));
            r.R.Val("Transaction", batch.Transaction);
            r.R.Val("BatchCommands.Count", batch.BatchCommands.Count);
            r.R.Try("CreateBatchCommand type", () => batch.CreateBatchCommand().GetType());
        });

        foreach (var method in new[] { "ExecuteNonQuery", "ExecuteScalar", "ExecuteReader", "ExecuteNonQueryAsync", "ExecuteScalarAsync", "ExecuteReaderAsync" })
        {
            yield return Scenario.Async($"batch.{method}", async r =>
            {
                var c = r.Open();
                var table = r.CreateTable(c);
                if (Batch(r, c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')", $"INSERT INTO {table} (id, name) VALUES (2, 'b')", $"SELECT COUNT(*) FROM {table}") is not { } batch)
                    return;
                await Execute(r, batch, method);
                r.R.Try("RecordsAffected of first", () => batch.BatchCommands[0].RecordsAffected);
                r.Count("rows", c, table);
            });
            yield return Scenario.Async($"batch.{method}-no-connection", async r =>
            {
                var c = r.Open();
                if (Batch(r, c, "SELECT 1") is not { } batch)
                    return;
                batch.Connection = null;
                await Execute(r, batch, method);
            });
            yield return Scenario.Async($"batch.{method}-closed", async r =>
            {
                var c = r.New();
                if (Batch(r, c, "SELECT 1") is not { } batch)
                    return;
                await Execute(r, batch, method);
            });
            yield return Scenario.Async($"batch.{method}-error", async r =>
            {
                var c = r.Open();
                if (Batch(r, c, "SELECT 1", "SELEC nonsense") is not { } batch)
                    return;
                await Execute(r, batch, method);
                r.R.Val("State", c.State);
                r.R.Try("next query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
            });
        }

        yield return Scenario.Sync("batch.parameters", r =>
        {
            var c = r.Open();
            if (Batch(r, c, "SELECT @p") is not { } batch)
                return;
            var command = batch.BatchCommands[0];
            r.R.Val("CanCreateParameter", command.CanCreateParameter);
            var p = command.CreateParameter();
            p.ParameterName = "@p";
            p.Value = 17;
            command.Parameters.Add(p);
            r.R.Try("ExecuteScalar", () => batch.ExecuteScalar());
        });

        yield return Scenario.Sync("batch.transaction", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            var tx = c.BeginTransaction();
            if (Batch(r, c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')") is not { } batch)
                return;
            r.R.Try("execute without Transaction", () => batch.ExecuteNonQuery());
            batch.Transaction = tx;
            r.R.Try("execute with Transaction", () => batch.ExecuteNonQuery());
            tx.Rollback();
            r.Count("rows", c, table);
        });

        yield return Scenario.Sync("batch.transaction-foreign", r =>
        {
            var a = r.Open();
            var b = r.Open();
            var tx = a.BeginTransaction();
            if (Batch(r, b, "SELECT 1") is not { } batch)
                return;
            batch.Transaction = tx;
            r.R.Try("execute", () => batch.ExecuteScalar());
        }).Pool(2);

        yield return Scenario.Sync("batch.prepare", r =>
        {
            var c = r.Open();
            if (Batch(r, c, "SELECT 1") is not { } batch)
                return;
            r.R.Try("Prepare", batch.Prepare);
            r.R.Try("ExecuteScalar", () => batch.ExecuteScalar());
        });

        yield return Scenario.Sync("batch.empty", r =>
        {
            var c = r.Open();
            if (Batch(r, c) is not { } batch)
                return;
            r.R.Try("ExecuteNonQuery", () => batch.ExecuteNonQuery());
        });

        yield return Scenario.Sync("batch.reader-close-connection", r =>
        {
            var c = r.Open();
            r.R.Events(c);
            if (Batch(r, c, "SELECT 1") is not { } batch)
                return;
            var reader = r.R.Try("ExecuteReader(CloseConnection)", () => batch.ExecuteReader(CommandBehavior.CloseConnection));
            reader?.Close();
            r.R.Val("State", c.State);
        });
    }

    private static async Task Execute(Run r, DbBatch batch, string method)
    {
        switch (method)
        {
            case "ExecuteNonQuery": r.R.Try(method, () => batch.ExecuteNonQuery()); break;
            case "ExecuteScalar": r.R.Try(method, () => batch.ExecuteScalar()); break;
            case "ExecuteReader": r.R.Try(method, () => { using var reader = batch.ExecuteReader(); var n = 0; do { while (reader.Read()) n++; } while (reader.NextResult()); return n; }); break;
            case "ExecuteNonQueryAsync": await r.R.TryAsync(method, () => batch.ExecuteNonQueryAsync()); break;
            case "ExecuteScalarAsync": await r.R.TryAsync(method, () => batch.ExecuteScalarAsync()); break;
            default: await r.R.TryAsync(method, async () => { await using var reader = await batch.ExecuteReaderAsync(); var n = 0; do { while (await reader.ReadAsync()) n++; } while (await reader.NextResultAsync()); return n; }); break;
        }
    }
}
