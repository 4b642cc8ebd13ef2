using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbCommand: every Execute* (sync and async) with every CommandBehavior, Prepare, Cancel, timeouts, Connection and Transaction swaps, executing while a reader is open, disposed commands.</summary>
internal static class CommandScenarios
{
    private const string TwoResults = "SELECT 1 AS a UNION ALL SELECT 2; SELECT 3 AS b";

    private static readonly (string Name, Func<DbCommand, Task<object?>> Execute)[] Executes =
    [
        ("ExecuteNonQuery", c => Task.FromResult<object?>(c.ExecuteNonQuery())),
        ("ExecuteScalar", c => Task.FromResult(c.ExecuteScalar())),
        ("ExecuteReader", c => { using var reader = c.ExecuteReader(); return Task.FromResult<object?>(reader.Read()); }),
        ("ExecuteNonQueryAsync", async c => await c.ExecuteNonQueryAsync()),
        ("ExecuteScalarAsync", async c => await c.ExecuteScalarAsync()),
        ("ExecuteReaderAsync", async c => { await using var reader = await c.ExecuteReaderAsync(); return await reader.ReadAsync(); }),
    ];

    public static IEnumerable<Scenario> All()
    {
        foreach (var behavior in new[] { CommandBehavior.Default, CommandBehavior.SingleResult, CommandBehavior.SchemaOnly, CommandBehavior.KeyInfo,
                     CommandBehavior.SingleRow, CommandBehavior.SequentialAccess, CommandBehavior.CloseConnection, CommandBehavior.SingleRow | CommandBehavior.CloseConnection })
        {
            var label = behavior.ToString().Replace(", ", "+", StringComparison.Ordinal);
            yield return Scenario.Sync($"cmd.reader-{label}", r =>
            {
                var c = r.Open();
                r.R.Events(c);
                var command = r.Command(c, TwoResults);
                var reader = r.R.Try("ExecuteReader", () => command.ExecuteReader(behavior));
                if (reader is null)
                    return;
                ReadAll(r, reader);
                r.R.Try("Close reader", reader.Close);
                r.R.Val("IsClosed", reader.IsClosed);
                r.R.Val("connection State", c.State);
                r.R.Try("RecordsAffected", () => reader.RecordsAffected);
            });
            yield return Scenario.Async($"cmd.reader-async-{label}", async r =>
            {
                var c = r.Open();
                r.R.Events(c);
                var command = r.Command(c, TwoResults);
                var reader = await r.R.TryAsync("ExecuteReaderAsync", () => command.ExecuteReaderAsync(behavior));
                if (reader is null)
                    return;
                do
                {
                    while (await reader.ReadAsync())
                        r.R.Val("row", reader.GetValue(0));
                }
                while (await reader.NextResultAsync());
                await r.R.TryAsync("CloseAsync reader", reader.CloseAsync);
                r.R.Val("IsClosed", reader.IsClosed);
                r.R.Val("connection State", c.State);
            });
        }

        foreach (var (name, execute) in Executes)
        {
            yield return Scenario.Async($"cmd.{name}", async r =>
            {
                var c = r.Open();
                await r.R.TryAsync(name, () => execute(r.Command(c, "SELECT 41 + 1")));
            });
            yield return Scenario.Async($"cmd.{name}-no-connection", async r =>
            {
                var command = r.Own(r.S.Factory.CreateCommand()!);
                command.CommandText = "SELECT 1";
                await r.R.TryAsync(name, () => execute(command));
            });
            yield return Scenario.Async($"cmd.{name}-closed-connection", async r =>
            {
                var c = r.New();
                await r.R.TryAsync(name, () => execute(r.Command(c, "SELECT 1")));
                r.R.Val("State", c.State);
            });
            yield return Scenario.Async($"cmd.{name}-disposed-command", async r =>
            {
                var c = r.Open();
                var command = r.Command(c, "SELECT 1");
                command.Dispose();
                await r.R.TryAsync(name, () => execute(command));
            });
            yield return Scenario.Async($"cmd.{name}-while-reader-open", async r =>
            {
                var c = r.Open();
                var reader = r.Own(r.Command(c, "SELECT 1 UNION ALL SELECT 2").ExecuteReader());
                reader.Read();
                await r.R.TryAsync(name, () => execute(r.Command(c, "SELECT 5")));
                r.R.Try("first reader Read", () => reader.Read());
                r.R.Try("close reader", reader.Close);
                await r.R.TryAsync(name + " after", () => execute(r.Command(c, "SELECT 6")));
            });
            yield return Scenario.Async($"cmd.{name}-syntax-error", async r =>
            {
                var c = r.Open();
                r.R.Events(c);
                await r.R.TryAsync(name, () => execute(r.Command(c, "SELEC nonsense")));
                r.R.Val("State", c.State);
                r.R.Try("next query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
            });
            yield return Scenario.Async($"cmd.{name}-empty-text", async r =>
            {
                var c = r.Open();
                await r.R.TryAsync(name, () => execute(r.Command(c, "")));
            });
            yield return Scenario.Async($"cmd.{name}-cancelled-token", async r =>
            {
                var c = r.Open();
                var command = r.Command(c, "SELECT 1");
                if (name.EndsWith("Async", StringComparison.Ordinal))
                {
                    var token = new CancellationToken(true);
                    await r.R.TryAsync(name, async () => name switch
                    {
                        "ExecuteNonQueryAsync" => (object?)await command.ExecuteNonQueryAsync(token),
                        "ExecuteScalarAsync" => await command.ExecuteScalarAsync(token),
                        _ => await command.ExecuteReaderAsync(token),
                    });
                }
                r.R.Val("State", c.State);
                r.R.Try("next query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
            });
        }

        yield return Scenario.Sync("cmd.nonquery-counts", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            r.R.Try("insert 3", () => r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"));
            r.R.Try("update 2", () => r.Exec(c, $"UPDATE {table} SET name = 'x' WHERE id > 1"));
            r.R.Try("delete 1", () => r.Exec(c, $"DELETE FROM {table} WHERE id = 1"));
            r.R.Try("select as nonquery", () => r.Exec(c, $"SELECT * FROM {table}"));
        });

        yield return Scenario.Sync("cmd.scalar-empty-result", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            r.R.Try("scalar of no rows", () => r.Scalar(c, $"SELECT id FROM {table}"));
            r.R.Try("scalar null", () => r.Scalar(c, "SELECT NULL"));
        });

        yield return Scenario.Sync("cmd.reader-records-affected", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            using (var reader = r.Command(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b')").ExecuteReader())
            {
                r.R.Val("FieldCount", reader.FieldCount);
                r.R.Val("Read", reader.Read());
                reader.Close();
                r.R.Val("RecordsAffected insert", reader.RecordsAffected);
            }
            using (var reader = r.Command(c, $"SELECT * FROM {table}").ExecuteReader())
            {
                while (reader.Read()) { }
                reader.Close();
                r.R.Val("RecordsAffected select", reader.RecordsAffected);
            }
        });

        yield return Scenario.Sync("cmd.prepare", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT @p");
            var p = command.CreateParameter();
            p.ParameterName = "@p";
            p.DbType = DbType.Int32;
            p.Value = 7;
            command.Parameters.Add(p);
            r.R.Try("Prepare", command.Prepare);
            r.R.Try("execute", () => Convert.ToInt64(command.ExecuteScalar()));
            p.Value = 8;
            r.R.Try("execute again", () => Convert.ToInt64(command.ExecuteScalar()));
        });

        yield return Scenario.Sync("cmd.prepare-invalid-sql", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELEC nonsense");
            r.R.Try("Prepare", command.Prepare);
            r.R.Val("State", c.State);
        }).Differs("Prepare", "Covet sets MySqlConnector's IgnorePrepare=true unless the connection string chooses: COM_RESET_CONNECTION drops server-side statements", TargetKind.MySql);

        yield return Scenario.Async("cmd.prepare-async", async r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT 3");
            await r.R.TryAsync("PrepareAsync", () => command.PrepareAsync());
            r.R.Try("execute", () => Convert.ToInt64(command.ExecuteScalar()));
        });

        yield return Scenario.Sync("cmd.prepare-closed", r =>
        {
            var c = r.New();
            var command = r.Command(c, "SELECT 3");
            r.R.Try("Prepare", command.Prepare);
        });

        yield return Scenario.Sync("cmd.prepare-no-connection", r =>
        {
            var command = r.Own(r.S.Factory.CreateCommand()!);
            command.CommandText = "SELECT 3";
            r.R.Try("Prepare", command.Prepare);
        });

        yield return Scenario.Sync("cmd.cancel-idle", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT 1");
            r.R.Try("Cancel before execute", command.Cancel);
            r.R.Try("execute", () => Convert.ToInt64(command.ExecuteScalar()));
            r.R.Try("Cancel after execute", command.Cancel);
        });

        yield return Scenario.Sync("cmd.cancel-no-connection", r =>
        {
            var command = r.Own(r.S.Factory.CreateCommand()!);
            r.R.Try("Cancel", command.Cancel);
        });

        yield return Scenario.Async("cmd.cancel-running", async r =>
        {
            var c = r.Open();
            var command = r.Command(c, r.Sleep(5));
            var task = command.ExecuteScalarAsync();
            await Task.Delay(300);
            r.R.Try("Cancel", command.Cancel);
            await r.R.TryAsync("awaited", async () => await task);
            r.R.Val("State", c.State);
            r.R.Try("next query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
        }).On(Targets.Servers);

        yield return Scenario.Async("cmd.token-cancels-running", async r =>
        {
            var c = r.Open();
            var command = r.Command(c, r.Sleep(5));
            using var cts = new CancellationTokenSource(300);
            await r.R.TryAsync("ExecuteScalarAsync", () => command.ExecuteScalarAsync(cts.Token));
            r.R.Val("State", c.State);
            r.R.Try("next query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
        }).On(Targets.Servers);

        yield return Scenario.Sync("cmd.timeout-fires", r =>
        {
            var c = r.Open();
            var command = r.Command(c, r.Sleep(4));
            command.CommandTimeout = 1;
            r.R.Try("ExecuteScalar", () => command.ExecuteScalar());
            r.R.Val("State", c.State);
            r.R.Try("next query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
            c.Close();
            var next = r.Open();
            r.R.Try("next borrower query", () => Convert.ToInt64(r.Scalar(next, "SELECT 2")));
        }).On(Targets.Servers);

        yield return Scenario.Sync("cmd.timeout-defaults", r =>
        {
            var c = r.New();
            r.R.Val("closed connection's command", r.Own(c.CreateCommand()).CommandTimeout);
            c.Open();
            r.R.Val("open connection's command", r.Own(c.CreateCommand()).CommandTimeout);
            r.R.Val("factory command", r.Own(r.S.Factory.CreateCommand()!).CommandTimeout);
        });

        yield return Scenario.Sync("cmd.timeout-from-connection-string", r =>
        {
            var keyword = r.T switch { TargetKind.Pg => "Command Timeout", TargetKind.MySql => "Default Command Timeout", _ => "Default Timeout" };
            var c = r.NewWith(r.S.ConnectionString + $";{keyword}=7");
            r.R.Val("closed", r.Own(c.CreateCommand()).CommandTimeout);
            c.Open();
            r.R.Val("open", r.Own(c.CreateCommand()).CommandTimeout);
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("cmd.timeout-negative", r =>
        {
            var command = r.Own(r.New().CreateCommand());
            r.R.Try("CommandTimeout = -1", () => { command.CommandTimeout = -1; });
            r.R.Val("CommandTimeout", command.CommandTimeout);
        });

        yield return Scenario.Sync("cmd.connection-swap-while-reader-open", r =>
        {
            var a = r.Open();
            var b = r.Open();
            var command = r.Command(a, "SELECT 1 UNION ALL SELECT 2");
            var reader = r.Own(command.ExecuteReader());
            reader.Read();
            r.R.Try("set Connection", () => { command.Connection = b; });
            r.R.Val("Connection is a", ReferenceEquals(command.Connection, a));
            r.R.Try("reader Read", () => reader.Read());
            reader.Close();
            r.R.Try("execute after", () => Convert.ToInt64(command.ExecuteScalar()));
        }).Pool(2);

        yield return Scenario.Sync("cmd.connection-swap-null-while-reader-open", r =>
        {
            var a = r.Open();
            var command = r.Command(a, "SELECT 1 UNION ALL SELECT 2");
            var reader = r.Own(command.ExecuteReader());
            reader.Read();
            r.R.Try("set Connection null", () => { command.Connection = null; });
            r.R.Try("reader Read", () => reader.Read());
        });

        yield return Scenario.Sync("cmd.connection-swap-between-executes", r =>
        {
            var a = r.Open();
            var b = r.Open();
            var command = r.Command(a, "SELECT 1");
            r.R.Try("on a", () => Convert.ToInt64(command.ExecuteScalar()));
            command.Connection = b;
            r.R.Try("on b", () => Convert.ToInt64(command.ExecuteScalar()));
            command.Connection = null;
            r.R.Try("on null", () => command.ExecuteScalar());
        }).Pool(2);

        yield return Scenario.Sync("cmd.transaction-foreign", r =>
        {
            var a = r.Open();
            var b = r.Open();
            var table = r.CreateTable(a);
            var tx = a.BeginTransaction();
            var command = r.Command(b, $"INSERT INTO {table} (id, name) VALUES (1, 'b')");
            r.R.Try("set Transaction", () => { command.Transaction = tx; });
            r.R.Try("execute on b with a's transaction", () => command.ExecuteNonQuery());
            r.R.Try("a rollback", tx.Rollback);
            r.Count("rows after a's rollback", a, table);
        }).On(Targets.Persistent).Pool(2);

        yield return Scenario.Sync("cmd.transaction-missing", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            var tx = c.BeginTransaction();
            var command = r.Command(c, $"INSERT INTO {table} (id, name) VALUES (1, 'x')");
            r.R.Try("execute without Transaction", () => command.ExecuteNonQuery());
            r.R.Try("rollback", tx.Rollback);
            r.Count("rows after rollback", c, table);
        });

        yield return Scenario.Sync("cmd.transaction-completed", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            var tx = c.BeginTransaction();
            var command = r.Command(c, $"INSERT INTO {table} (id, name) VALUES (1, 'x')", tx);
            r.R.Try("execute in transaction", () => command.ExecuteNonQuery());
            tx.Commit();
            command.CommandText = $"INSERT INTO {table} (id, name) VALUES (2, 'y')";
            r.R.Try("execute with committed Transaction", () => command.ExecuteNonQuery());
            r.R.Try("Transaction after commit is null", () => command.Transaction is null);
            r.Count("rows", c, table);
        });

        yield return Scenario.Sync("cmd.transaction-of-closed-connection", r =>
        {
            var a = r.Open();
            var tx = a.BeginTransaction();
            a.Close();
            var b = r.Open();
            var command = r.Command(b, "SELECT 1");
            r.R.Try("set Transaction", () => { command.Transaction = tx; });
            r.R.Try("execute", () => command.ExecuteScalar());
        });

        yield return Scenario.Sync("cmd.dispose-twice", r =>
        {
            var c = r.Open();
            var command = c.CreateCommand();
            r.R.Try("Dispose", command.Dispose);
            r.R.Try("Dispose again", command.Dispose);
            r.R.Val("Connection is c", ReferenceEquals(command.Connection, c));
        });

        yield return Scenario.Sync("cmd.dispose-then-properties", r =>
        {
            var c = r.Open();
            var command = c.CreateCommand();
            command.CommandText = "SELECT 9";
            command.Dispose();
            r.R.Try("CommandText", () => command.CommandText);
            r.R.Try("Parameters.Count", () => command.Parameters.Count);
            r.R.Try("set CommandText", () => { command.CommandText = "SELECT 10"; });
        }).Differs("CommandText", "Covet's commands wrap a fresh provider command, never the connection's recycled one (Npgsql would hand a command disposed after its connection closed to the next borrower), so Dispose does not clear it", TargetKind.Pg);

        yield return Scenario.Sync("cmd.stored-procedure-type", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "no_such_procedure");
            r.R.Try("CommandType = StoredProcedure", () => { command.CommandType = CommandType.StoredProcedure; });
            r.R.Try("execute", () => command.ExecuteNonQuery());
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("cmd.table-direct-type", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "x");
            r.R.Try("CommandType = TableDirect", () => { command.CommandType = CommandType.TableDirect; });
            r.R.Try("execute", () => command.ExecuteNonQuery());
        });

        yield return Scenario.Sync("cmd.factory-command-bound-later", r =>
        {
            var c = r.Open();
            var command = r.Own(r.S.Factory.CreateCommand()!);
            command.CommandText = "SELECT 11";
            command.Connection = c;
            r.R.Try("execute", () => Convert.ToInt64(command.ExecuteScalar()));
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("cmd.same-command-twice-reader-open", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT 1 UNION ALL SELECT 2");
            var reader = r.Own(command.ExecuteReader());
            r.R.Try("execute same command again", () => { using var second = command.ExecuteReader(); return second.Read(); });
            r.R.Try("first Read", () => reader.Read());
        });

        yield return Scenario.Sync("cmd.execute-after-connection-closed-reopened", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT 12");
            r.R.Try("first", () => Convert.ToInt64(command.ExecuteScalar()));
            c.Close();
            r.R.Try("closed", () => command.ExecuteScalar());
            c.Open();
            r.R.Try("reopened", () => Convert.ToInt64(command.ExecuteScalar()));
        });
    }

    internal static void ReadAll(Run r, DbDataReader reader)
    {
        var result = 0;
        do
        {
            r.R.Val($"result {result} FieldCount", reader.FieldCount);
            while (r.R.Try($"result {result} Read", reader.Read))
                r.R.Try("value", () => reader.GetValue(0));
            result++;
        }
        while (r.R.Try($"NextResult {result}", reader.NextResult));
    }
}
