using Microsoft.Data.Sqlite;

namespace Covet.Data.ConformanceTests;

/// <summary>
/// What the next borrower of the same physical connection sees (pools of one): session state, temp tables, in-memory
/// SQLite databases and their lifetimes. The ADO.NET specification suite cannot check this; a drop-in pool must.
/// </summary>
internal static class NextBorrowerScenarios
{
    public static IEnumerable<Scenario> All()
    {
        yield return Scenario.Sync("next.temp-table", r =>
        {
            var c = r.Open();
            r.R.Try("create temp", () => r.Exec(c, r.CreateTemp("cf_temp")));
            r.R.Try("insert", () => r.Exec(c, "INSERT INTO cf_temp (id) VALUES (1)"));
            c.Close();
            var next = r.Open();
            r.R.Try("next borrower reads temp", () => Convert.ToInt64(r.Scalar(next, "SELECT COUNT(*) FROM cf_temp")));
        }).Differs("next borrower reads temp", "Covet resets the session between borrowers on every dialect; Microsoft.Data.Sqlite's pool keeps TEMP objects", TargetKind.SqliteFile);

        yield return Scenario.Sync("next.session-variable", r =>
        {
            var c = r.Open();
            var (set, get) = r.T switch
            {
                TargetKind.Pg => ("SET statement_timeout = 12345", "SHOW statement_timeout"),
                TargetKind.MySql => ("SET @cf_var = 42", "SELECT @cf_var"),
                _ => ("PRAGMA cache_size = 1234", "PRAGMA cache_size"),
            };
            r.R.Try("set", () => r.Exec(c, set));
            r.R.Try("same borrower", () => r.Scalar(c, get));
            c.Close();
            var next = r.Open();
            r.R.Try("next borrower", () => r.Scalar(next, get));
        });

        yield return Scenario.Sync("next.sqlite-private-memory", r =>
        {
            var c = r.Open();
            r.R.Try("create table", () => r.Exec(c, "CREATE TABLE cf_mem (id INT)"));
            r.R.Try("insert", () => r.Exec(c, "INSERT INTO cf_mem (id) VALUES (1)"));
            c.Close();
            var next = r.Open();
            r.R.Try("next borrower sees table", () => Convert.ToInt64(r.Scalar(next, "SELECT COUNT(*) FROM cf_mem")));
            r.R.Try("same connection reopened sees table", () => { next.Close(); c.Open(); return Convert.ToInt64(r.Scalar(c, "SELECT COUNT(*) FROM cf_mem")); });
        }).On(TargetKind.SqliteMemory);

        foreach (var (name, text) in new (string, string)[]
                 {
                     ("shared-cache-memory", "Data Source=cf_shared_{0};Mode=Memory;Cache=Shared"),
                     ("memory-mode", "Data Source=cf_mode_{0};Mode=Memory"),
                     ("empty-data-source", "Data Source="),
                     ("pooling-false-file", "Data Source={1};Pooling=false"),
                     ("memory-uri", "Data Source=file:cf_uri_{0}?mode=memory&cache=shared"),
                 })
        {
            yield return Scenario.Sync($"next.sqlite-{name}", r =>
            {
                var file = Path.Combine(Path.GetTempPath(), $"covet-cf-{r.S.RunId}.pf.db");
                var cs = string.Format(System.Globalization.CultureInfo.InvariantCulture, text, r.S.RunId, file)
                         + (r.S.IsCovet ? Targets.CovetKeywords(2) : "");
                try
                {
                    var keeper = r.NewWith(cs);
                    keeper.Open();
                    r.R.Try("create table", () => r.Exec(keeper, "CREATE TABLE cf_kept (id INT)"));
                    var other = r.NewWith(cs);
                    r.R.Try("second connection open while first open", other.Open);
                    r.R.Try("second sees table", () => Convert.ToInt64(r.Scalar(other, "SELECT COUNT(*) FROM cf_kept")));
                    other.Close();
                    keeper.Close();
                    var next = r.NewWith(cs);
                    next.Open();
                    r.R.Try("after all closed, sees table", () => Convert.ToInt64(r.Scalar(next, "SELECT COUNT(*) FROM cf_kept")));
                    next.Close();
                }
                finally
                {
                    foreach (var f in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(file) + "*"))
                        File.Delete(f);
                }
            }).On(TargetKind.SqliteMemory).OnlyPath(PathKind.Factory).Pool(2);
        }

        yield return Scenario.Sync("next.sqlite-memory-pool-of-one-two-open", r =>
        {
            var a = r.Open();
            r.R.Try("a create", () => r.Exec(a, "CREATE TABLE cf_a (id INT)"));
            a.Close();
            var b = r.Open();
            r.R.Try("b sees a's table", () => Convert.ToInt64(r.Scalar(b, "SELECT COUNT(*) FROM cf_a")));
        }).On(TargetKind.SqliteMemory);

        yield return Scenario.Sync("next.attached-database", r =>
        {
            var extra = Path.Combine(Path.GetTempPath(), $"covet-cf-{r.S.RunId}.attached.db");
            try
            {
                var c = r.Open();
                r.R.Try("attach", () => r.Exec(c, $"ATTACH DATABASE '{extra}' AS cf_extra"));
                c.Close();
                var next = r.Open();
                r.R.Try("next borrower's databases", () => r.Scalar(next, "SELECT COUNT(*) FROM pragma_database_list WHERE name = 'cf_extra'"));
            }
            finally
            {
                SqliteConnection.ClearAllPools();
                foreach (var f in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(extra) + "*"))
                    File.Delete(f);
            }
        }).On(TargetKind.SqliteFile)
          .Differs("next borrower's databases", "Covet resets the session between borrowers on every dialect; Microsoft.Data.Sqlite's pool keeps attached databases", TargetKind.SqliteFile);

        yield return Scenario.Sync("next.change-database", r =>
        {
            var c = r.Open();
            var original = c.Database;
            r.R.Try("ChangeDatabase", () => c.ChangeDatabase(r.T == TargetKind.Pg ? "postgres" : "mysql"));
            r.R.Try("Database", () => c.Database);
            c.Close();
            var next = r.Open();
            r.R.Val("next borrower in original database", next.Database == original);
        }).On(Targets.Servers);

        yield return Scenario.Sync("next.after-broken-query", r =>
        {
            var c = r.Open();
            r.R.Try("error", () => r.Scalar(c, "SELECT * FROM cf_no_such_table"));
            c.Close();
            var next = r.Open();
            r.R.Try("next borrower query", () => Convert.ToInt64(r.Scalar(next, "SELECT 1")));
        });

        yield return Scenario.Sync("next.after-error-in-transaction", r =>
        {
            var c = r.Open();
            var tx = c.BeginTransaction();
            r.R.Try("error", () => r.Scalar(c, "SELECT * FROM cf_no_such_table", tx));
            r.R.Try("query in failed transaction", () => Convert.ToInt64(r.Scalar(c, "SELECT 1", tx)));
            c.Close();
            var next = r.Open();
            r.R.Try("next borrower query", () => Convert.ToInt64(r.Scalar(next, "SELECT 1")));
        });
    }
}
