namespace Covet.Data.ConformanceTests;

/// <summary>ConnectionString: set valid, malformed, unknown keyword, null, while open; passwords never in messages.</summary>
internal static class ConnectionStringScenarios
{
    public static IEnumerable<Scenario> All()
    {
        // Each malformed form: set at once (a provider that validates at set time throws there), then Open.
        var malformed = new (string Name, string Text)[]
        {
            ("syntax", "Data Source=x;=oops;Password=hunter2secret"),
            ("unknown-keyword", "No Such Keyword=1;Password=hunter2secret"),
            ("bad-value", "Pooling=maybe;Password=hunter2secret"),
            ("unterminated-quote", "Password='hunter2secret"),
        };
        foreach (var (name, text) in malformed)
        {
            yield return Scenario.Sync($"connstr.malformed-{name}", r =>
            {
                var c = r.S.Factory.CreateConnection()!;
                r.Own(c);
                var set = r.R.Try("set ConnectionString", () => { c.ConnectionString = text; });
                r.R.Val("State", c.State);
                try
                {
                    c.Open();
                    r.R.Val("Open", "ok");
                }
                catch (Exception e)
                {
                    r.R.Val("Open", Outcomes.Thrown(e));
                    r.R.Val("Open message hides password", !e.Message.Contains("hunter2secret", StringComparison.Ordinal));
                }
                _ = set;
            }).OnlyPath(PathKind.Factory);
        }

        yield return Scenario.Sync("connstr.covet-keyword-unknown", r =>
        {
            // Only on Covet runs is this a Covet keyword; the provider sees an unknown keyword. Both must reject it.
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            var threw = false;
            try
            {
                c.ConnectionString = r.S.ProviderConnectionString + ";Covet.NoSuchOption=1";
                c.Open();
            }
            catch (Exception e)
            {
                threw = true;
                r.R.Val("names the keyword", e.Message.Contains("Covet.NoSuchOption", StringComparison.OrdinalIgnoreCase));
            }
            r.R.Val("rejected", threw);
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("connstr.valid-roundtrip", r =>
        {
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            r.R.Val("initial empty", string.IsNullOrEmpty(c.ConnectionString));
            r.R.Try("set", () => { c.ConnectionString = r.S.ConnectionString; });
            r.R.Val("non-empty", !string.IsNullOrEmpty(c.ConnectionString));
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("connstr.set-null", r =>
        {
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            r.R.Try("set null", () => { c.ConnectionString = null; });
            r.R.Val("get", c.ConnectionString);
            r.R.Try("Open", c.Open);
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("connstr.open-without", r =>
        {
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            r.R.Events(c);
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
            r.R.Try("Database", () => c.Database);
            r.R.Try("DataSource", () => c.DataSource);
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Async("connstr.open-async-without", async r =>
        {
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            await r.R.TryAsync("OpenAsync", () => c.OpenAsync());
            r.R.Val("State", c.State);
        }).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("connstr.set-while-open", r =>
        {
            var c = r.Open();
            r.R.Try("set while open", () => { c.ConnectionString = r.S.ConnectionString; });
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("connstr.set-after-close", r =>
        {
            var c = r.Open();
            c.Close();
            r.R.Try("set after close", () => { c.ConnectionString = r.S.ConnectionString; });
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("connstr.password-after-open", r =>
        {
            var c = r.Open();
            r.R.Val("contains Password", c.ConnectionString.Contains("assword", StringComparison.OrdinalIgnoreCase));
        }).On(TargetKind.Pg, TargetKind.MySql)
          .Differs("contains Password", "Covet keeps the string as given (Persist Security Info is the provider's; Covet never rewrites the user's string)");

        yield return Scenario.Sync("connstr.wrong-database", r =>
        {
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            var text = r.S.ConnectionString.Replace("Database=covet", "Database=covet_missing_db", StringComparison.OrdinalIgnoreCase);
            c.ConnectionString = text;
            r.R.Events(c);
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
        }).On(TargetKind.Pg, TargetKind.MySql).OnlyPath(PathKind.Factory);

        yield return Scenario.Sync("connstr.sqlite-readonly-missing-file", r =>
        {
            var c = r.S.Factory.CreateConnection()!;
            r.Own(c);
            c.ConnectionString = $"Data Source={Path.Combine(Path.GetTempPath(), "covet-cf-missing-" + r.S.RunId + ".db")};Mode=ReadOnly";
            r.R.Events(c);
            r.R.Try("Open", c.Open);
            r.R.Val("State", c.State);
        }).On(TargetKind.SqliteFile).OnlyPath(PathKind.Factory);
    }
}
