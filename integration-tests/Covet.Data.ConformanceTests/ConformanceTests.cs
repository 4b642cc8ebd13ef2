using System.Text;

namespace Covet.Data.ConformanceTests;

/// <summary>
/// Every scenario × target × path is one row: the scenario runs on the provider's own pool, then through Covet (the
/// same path: a factory, or a data source), and the two runs' outcomes must be equal step by step, except steps the
/// scenario lists as a deliberate, documented difference.
/// </summary>
[TestClass]
public sealed class ConformanceTests
{
    public static IEnumerable<object[]> Rows =>
        Catalog.All.SelectMany(s => s.Targets.SelectMany(t => s.Paths.Select(p => new object[] { s.Name, t, p })));

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DynamicData(nameof(Rows))]
    public async Task RawAndCovetAgree(string scenario, TargetKind target, PathKind path)
    {
        var s = Catalog.Find(scenario);
        var raw = await RunOnce(s, target, path, covet: false);
        var covet = await RunOnce(s, target, path, covet: true);
        var (verdict, detail) = Compare(s, target, raw, covet);
        Report.Add(scenario, target, path, verdict, detail);
        if (verdict == "differs")
            Assert.Fail($"{scenario} on {target} ({path}): Covet differs from the provider.\n{detail}\nprovider:\n{raw}\nCovet:\n{covet}");
        if (verdict == "deliberate")
            Console.WriteLine($"deliberate difference (README, Differences from the provider): {detail}");
    }

    private static async Task<Outcomes> RunOnce(Scenario scenario, TargetKind target, PathKind path, bool covet)
    {
        await using var source = new Source(target, path, covet, scenario.PoolSize);
        var run = new Run(source);
        try
        {
            await scenario.Body(run);
        }
        catch (Exception e)
        {
            run.R.Val("scenario body", Outcomes.Thrown(e));
        }
        finally
        {
            run.DisposeOwned();
        }
        return run.R;
    }

    internal static (string Verdict, string Detail) Compare(Scenario scenario, TargetKind target, Outcomes raw, Outcomes covet)
    {
        var deliberate = new StringBuilder();
        var count = Math.Max(raw.Steps.Count, covet.Steps.Count);
        for (var i = 0; i < count; i++)
        {
            var r = i < raw.Steps.Count ? raw.Steps[i] : ("(missing)", "(no step)");
            var c = i < covet.Steps.Count ? covet.Steps[i] : ("(missing)", "(no step)");
            if (r == c)
                continue;
            if (r.Item1 == c.Item1 && scenario.DeliberateFor(target, r.Item1) is { } d)
            {
                deliberate.Append($"step {i} '{r.Item1}': provider {r.Item2}, Covet {c.Item2} ({d.Reason}); ");
                continue;
            }
            return ("differs", $"first difference at step {i}: provider '{r.Item1}' = {r.Item2}; Covet '{c.Item1}' = {c.Item2}");
        }
        return deliberate.Length > 0 ? ("deliberate", deliberate.ToString()) : ("equal", "");
    }
}
