using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbTransaction: isolation levels, savepoints, completing twice, after the connection closed, Connection after completion.</summary>
internal static class TransactionScenarios
{
    private static readonly (string Name, Action<DbTransaction> Act)[] Completions =
    [
        ("Commit", t => t.Commit()),
        ("Rollback", t => t.Rollback()),
        ("Dispose", t => t.Dispose()),
    ];

    public static IEnumerable<Scenario> All()
    {
        foreach (var level in Enum.GetValues<IsolationLevel>())
        {
            yield return Scenario.Sync($"tx.isolation-{level}", r =>
            {
                var c = r.Open();
                var tx = r.R.Try("BeginTransaction", () => c.BeginTransaction(level));
                if (tx is null)
                    return;
                r.R.Val("IsolationLevel", tx.IsolationLevel);
                r.R.Try("query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1", tx)));
                r.R.Try("Commit", tx.Commit);
            });
        }

        foreach (var (first, act1) in Completions)
        {
            foreach (var (second, act2) in Completions)
            {
                yield return Scenario.Sync($"tx.{first}-then-{second}", r =>
                {
                    var c = r.Open();
                    var table = r.CreateTable(c);
                    var tx = c.BeginTransaction();
                    r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'x')", tx);
                    r.R.Try(first, () => act1(tx));
                    r.R.Try("Connection after first is null", () => tx.Connection is null);
                    r.R.Try(second, () => act2(tx));
                    r.R.Try("Connection after second is null", () => tx.Connection is null);
                    r.R.Try("IsolationLevel", () => tx.IsolationLevel);
                    r.Count("rows", c, table);
                });
            }
            yield return Scenario.Sync($"tx.{first}-after-connection-closed", r =>
            {
                var setup = r.Open();
                var table = r.CreateTable(setup);
                setup.Close();
                var c = r.Open();
                var tx = c.BeginTransaction();
                r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'x')", tx);
                r.R.Try("connection Close", c.Close);
                r.R.Try("Connection is null", () => tx.Connection is null);
                r.R.Try(first, () => act1(tx));
                var next = r.Open();
                r.Count("rows seen by next borrower", next, table);
                r.R.Try("next borrower begins", () => { using var t = next.BeginTransaction(); t.Commit(); });
            }).On(Targets.Persistent);
        }

        // System.Transactions: connections opened inside a TransactionScope enlist; the outcome decides what the next
        // borrower (outside the scope) sees, and the connection must come back clean.
        foreach (var complete in new[] { true, false })
        {
            var outcome = complete ? "complete" : "rollback";
            yield return Scenario.Sync($"tx.scope-{outcome}", r =>
            {
                var setup = r.Open();
                var table = r.CreateTable(setup);
                setup.Close();
                using (var scope = new System.Transactions.TransactionScope())
                {
                    var c = r.Open();
                    r.R.Try("insert in scope", () => r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'x')"));
                    r.R.Try("close in scope", c.Close);
                    if (complete)
                        scope.Complete();
                    r.R.Try("scope Dispose", scope.Dispose);
                }
                var next = r.Open();
                r.Count("rows seen after the scope", next, table);
                r.R.Try("next borrower begins", () => { using var t = next.BeginTransaction(); t.Commit(); });
            }).On(Targets.Persistent);

            yield return Scenario.Sync($"tx.scope-two-opens-{outcome}", r =>
            {
                var setup = r.Open();
                var table = r.CreateTable(setup);
                setup.Close();
                using (var scope = new System.Transactions.TransactionScope())
                {
                    var first = r.Open();
                    r.R.Try("first insert", () => r.Exec(first, $"INSERT INTO {table} (id, name) VALUES (1, 'x')"));
                    first.Close();
                    var second = r.R.Try("second open in the scope", () => r.Open());
                    if (second is not null)
                    {
                        r.R.Try("second sees the first insert", () => Convert.ToInt64(r.Scalar(second, $"SELECT COUNT(*) FROM {table}")));
                        r.R.Try("second insert", () => r.Exec(second, $"INSERT INTO {table} (id, name) VALUES (2, 'y')"));
                        second.Close();
                    }
                    if (complete)
                        r.R.Try("Complete", scope.Complete);
                    r.R.Try("scope Dispose", scope.Dispose);
                }
                var next = r.Open();
                r.Count("rows seen after the scope", next, table);
            }).On(Targets.Persistent);
        }

        yield return Scenario.Async("tx.async-commit-rollback", async r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            var tx = await r.R.TryAsync("BeginTransactionAsync", async () => await c.BeginTransactionAsync());
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'x')", tx);
            await r.R.TryAsync("CommitAsync", () => tx!.CommitAsync());
            await r.R.TryAsync("RollbackAsync after commit", () => tx!.RollbackAsync());
            r.R.Try("Connection is null", () => tx!.Connection is null);
            var tx2 = await c.BeginTransactionAsync(IsolationLevel.Serializable);
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (2, 'y')", tx2);
            await r.R.TryAsync("RollbackAsync", () => tx2.RollbackAsync());
            await r.R.TryAsync("DisposeAsync", async () => await tx2.DisposeAsync());
            r.Count("rows", c, table);
        });

        yield return Scenario.Sync("tx.nested-begin", r =>
        {
            var c = r.Open();
            var tx = c.BeginTransaction();
            r.R.Try("second BeginTransaction", () => c.BeginTransaction());
            r.R.Try("Commit first", tx.Commit);
            r.R.Try("BeginTransaction after commit", () => { using var t = c.BeginTransaction(); t.Rollback(); });
        });

        yield return Scenario.Sync("tx.connection-property", r =>
        {
            var c = r.Open();
            var tx = c.BeginTransaction();
            r.R.Val("Connection is c", ReferenceEquals(tx.Connection, c));
            r.R.Val("SupportsSavepoints", tx.SupportsSavepoints);
            tx.Rollback();
            r.R.Try("Connection after rollback is null", () => tx.Connection is null);
        });

        yield return Scenario.Sync("tx.savepoints", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            var tx = c.BeginTransaction();
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')", tx);
            r.R.Try("Save s1", () => tx.Save("s1"));
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (2, 'b')", tx);
            r.R.Try("Rollback s1", () => tx.Rollback("s1"));
            r.R.Try("Save s2", () => tx.Save("s2"));
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (3, 'c')", tx);
            r.R.Try("Release s2", () => tx.Release("s2"));
            r.R.Try("Rollback missing", () => tx.Rollback("nope"));
            r.R.Try("Commit", tx.Commit);
            r.Count("rows", c, table);
        });

        yield return Scenario.Async("tx.savepoints-async", async r =>
        {
            var c = r.Open();
            var tx = await c.BeginTransactionAsync();
            await r.R.TryAsync("SaveAsync", () => tx.SaveAsync("s1"));
            await r.R.TryAsync("RollbackAsync(s1)", () => tx.RollbackAsync("s1"));
            await r.R.TryAsync("ReleaseAsync(s1)", () => tx.ReleaseAsync("s1"));
            await r.R.TryAsync("CommitAsync", () => tx.CommitAsync());
        });

        yield return Scenario.Sync("tx.savepoint-after-commit", r =>
        {
            var c = r.Open();
            var tx = c.BeginTransaction();
            tx.Commit();
            r.R.Try("Save after commit", () => tx.Save("s"));
        });

        yield return Scenario.Sync("tx.rollback-undoes", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            using (var tx = c.BeginTransaction())
            {
                r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')", tx);
                r.Count("rows inside", c, table);
            }
            r.Count("rows after dispose", c, table);
        });

        yield return Scenario.Sync("tx.commit-visible-to-next-borrower", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            var tx = c.BeginTransaction();
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')", tx);
            tx.Commit();
            c.Close();
            var next = r.Open();
            r.Count("rows", next, table);
        }).On(Targets.Persistent);

        yield return Scenario.Sync("tx.left-open-next-borrower", r =>
        {
            var setup = r.Open();
            var table = r.CreateTable(setup);
            setup.Close();
            var c = r.Open();
            var tx = c.BeginTransaction();
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')", tx);
            c.Close();
            var next = r.Open();
            r.Count("rows seen by next borrower", next, table);
            r.R.Try("next borrower begins", () => { using var t = next.BeginTransaction(); t.Commit(); });
        }).On(Targets.Persistent);

        yield return Scenario.Sync("tx.sql-begin-left-open", r =>
        {
            var setup = r.Open();
            var table = r.CreateTable(setup);
            setup.Close();
            var c = r.Open();
            r.R.Try("BEGIN", () => r.Exec(c, "BEGIN"));
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')");
            c.Close();
            var next = r.Open();
            r.Count("rows seen by next borrower", next, table);
            r.R.Try("next borrower BeginTransaction", () => { using var t = next.BeginTransaction(); t.Commit(); });
        }).On(Targets.Persistent);

        yield return Scenario.Sync("tx.begin-on-closed-after-close", r =>
        {
            var c = r.Open();
            using var tx = c.BeginTransaction();
            c.Close();
            r.R.Try("BeginTransaction on closed", () => c.BeginTransaction());
            c.Open();
            r.R.Try("BeginTransaction after reopen", () => { using var t = c.BeginTransaction(); t.Commit(); });
        });
    }
}
