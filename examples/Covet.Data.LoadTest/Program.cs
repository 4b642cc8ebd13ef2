using System.CommandLine;
using Covet.Data.LoadTest;
using Covet.Data.LoadTest.Progress;
using Covet.Data.LoadTest.Reporting;
using Covet.Data.LoadTest.Scenarios;
using Spectre.Console;

// Covet.Data load tester.
//
//   dotnet run -c Release --project examples/Covet.Data.LoadTest                       200 callers × 100 on embedded SQLite
//   ... -- --connections 1000 --iterations 50                                          a bigger burst
//   ... -- --duration 30 --workers 50                                                  sustained load
//   ... -- --extreme 10000                                                             10,000 callers on a pool of 100
//   ... -- --compare                                                                   Covet vs the provider's own pool
//   ... -- --pools 1000 10000                                                          idle CPU and memory of many pools
//   ... -- --provider postgres --connection "Host=...;Username=...;Password=..."       a real server
//   ... -- --json report.json --html report.html                                      machine-readable and visual reports
//
// Exit code: 0 when every operation succeeded; 1 when an operation failed, an acquire timed out (unless
// --allow-timeouts), a leak was reported or the pool did not drain; 2 for a bad command line or an unreachable database.

var provider = new Option<string>("--provider", "-p")
{
    Description = "Database: sqlite (default: a temporary file, deleted afterwards), postgres or mysql.",
    DefaultValueFactory = _ => "sqlite",
};
provider.AcceptOnlyFromAmong("sqlite", "postgres", "postgresql", "mysql", "mariadb");
var connection = new Option<string?>("--connection", "-c")
{
    Description = "Provider connection string. Default for postgres: $COVET_TEST_PG; for mysql: $COVET_TEST_MYSQL.",
};
var connections = new Option<int?>("--connections", "-n")
{
    Description = "Concurrent callers, each repeating open → query → close (default 200; with --duration, --workers).",
};
var iterations = new Option<int>("--iterations", "-i")
{
    Description = "Operations per caller, when --duration is not given.",
    DefaultValueFactory = _ => 100,
};
var duration = new Option<double?>("--duration", "-d")
{
    Description = "Sustained load: run each round for this many seconds instead of a number of iterations.",
};
var workers = new Option<int>("--workers", "-w")
{
    Description = "Concurrent workers of a --duration run.",
    DefaultValueFactory = _ => 50,
};
var extreme = new Option<int?>("--extreme")
{
    Description = "N callers (e.g. 10000) released at once on a small pool (--max-pool, default 100), each doing one open → query → close.",
};
var compare = new Option<bool>("--compare")
{
    Description = "Also run the provider's own pool with the same limits, interleaved with Covet's, and report side by side.",
};
var rounds = new Option<int?>("--rounds")
{
    Description = "Timed rounds per pool (default 3 with --compare, else 1).",
};
var warmUp = new Option<double?>("--warm-up")
{
    Description = "Longest untimed warm-up in seconds: 1-s rounds of the scenario on each pool in turn until each pool's throughput settles within 5 % (default 20 with --compare, else 5; 0: none).",
};
var maxPool = new Option<int?>("--max-pool")
{
    Description = "Maximum pool size (default 20; 100 with --extreme).",
};
var minPool = new Option<int>("--min-pool")
{
    Description = "Minimum pool size.",
    DefaultValueFactory = _ => 0,
};
var acquireTimeout = new Option<double>("--acquire-timeout")
{
    Description = "Seconds a caller waits for a connection before failing.",
    DefaultValueFactory = _ => 30,
};
var query = new Option<string>("--query")
{
    Description = "Statement each operation runs through Dapper's ExecuteScalarAsync.",
    DefaultValueFactory = _ => "select 1",
};
var hold = new Option<double>("--hold")
{
    Description = "Milliseconds each caller keeps its connection after the query (simulated work). 0: it only hops through the thread pool once, so callers overlap even on SQLite.",
    DefaultValueFactory = _ => 0,
};
var covetOptions = new Option<string?>("--covet-options")
{
    Description = "Extra Covet settings as keywords, e.g. \"LeakDetectionThreshold=0;PrePing=false\" (applied to Covet's pool only).",
};
var probeWaiters = new Option<int?>("--probe-waiters")
{
    Description = "Callers left waiting on an exhausted pool to measure memory per waiting caller (default 1000; N with --extreme).",
};
var pools = new Option<int[]>("--pools")
{
    Description = "Many idle pools: for each N given (e.g. --pools 1000 10000), N SQLite files, one open → close each, then --idle seconds idle; " +
        "idle CPU and managed memory per pool, Covet vs Microsoft.Data.Sqlite's pool, each in a fresh process.",
    AllowMultipleArgumentsPerToken = true,
    Arity = ArgumentArity.OneOrMore,
};
var idle = new Option<double>("--idle")
{
    Description = "Seconds the --pools processes stay idle while their CPU time is measured.",
    DefaultValueFactory = _ => 10,
};
// The child process of --pools (hidden): measures one side only.
var poolsChild = new Option<string?>(ManyPools.ChildFlag) { Hidden = true };
var poolsDir = new Option<string?>("--pools-dir") { Hidden = true };
var json = new Option<FileInfo?>("--json") { Description = "Also write the report as JSON to this file." };
var html = new Option<FileInfo?>("--html") { Description = "Also write a self-contained HTML report (inline SVG charts) to this file." };
var plain = new Option<bool>("--plain") { Description = "Plain progress lines even on a terminal (automatic when output is redirected)." };
var allowTimeouts = new Option<bool>("--allow-timeouts") { Description = "Acquire timeouts do not make the exit code non-zero." };
var sampleInterval = new Option<int>("--sample-interval")
{
    Description = "Milliseconds between samples of the pool's counts.",
    DefaultValueFactory = _ => 100,
};

var root = new RootCommand("Load tester for Covet.Data: concurrent open → query → close against Covet's pool (and the provider's own with --compare).")
{
    provider, connection, connections, iterations, duration, workers, extreme, compare, rounds, warmUp, maxPool, minPool, acquireTimeout,
    query, hold, covetOptions, probeWaiters, pools, idle, poolsChild, poolsDir, json, html, plain, allowTimeouts, sampleInterval,
};

// Options with a default are checked on their own result: a command validator sees default(T) for them when omitted.
foreach (var option in new Option[] { iterations, workers, sampleInterval, acquireTimeout, idle })
{
    option.Validators.Add(result =>
    {
        if (!result.Implicit && Convert.ToDouble(result.GetValueOrDefault<object>(), System.Globalization.CultureInfo.InvariantCulture) <= 0)
            result.AddError($"{option.Name} must be greater than 0.");
    });
}

root.Validators.Add(result =>
{
    if (result.GetValue(extreme) is not null && (result.GetValue(connections) is not null || result.GetValue(duration) is not null))
        result.AddError("--extreme cannot be combined with --connections or --duration.");
    foreach (var (name, value) in new (string, int?)[]
    {
        ("--extreme", result.GetValue(extreme)), ("--connections", result.GetValue(connections)), ("--rounds", result.GetValue(rounds)),
        ("--max-pool", result.GetValue(maxPool)), ("--probe-waiters", result.GetValue(probeWaiters)),
    })
    {
        if (value <= 0)
            result.AddError($"{name} must be greater than 0.");
    }
    if (result.GetValue(duration) is <= 0)
        result.AddError("--duration must be greater than 0.");
    if (result.GetValue(pools) is { } poolCounts && poolCounts.Any(n => n <= 0))
        result.AddError("--pools counts must be greater than 0.");
    if (result.GetValue(warmUp) < 0)
        result.AddError("--warm-up must not be negative.");
    if (result.GetValue(hold) < 0)
        result.AddError("--hold must not be negative.");
    if (result.GetValue(minPool) < 0)
        result.AddError("--min-pool must not be negative.");
    if (result.GetValue(minPool) > (result.GetValue(maxPool) ?? (result.GetValue(extreme) is null ? 20 : 100)))
        result.AddError("--min-pool must not exceed --max-pool.");
});

root.SetAction(async (parse, cancellationToken) =>
{
    if (parse.GetValue(poolsChild) is { } side)
        return ManyPools.RunChild(Enum.Parse<PoolKind>(side), parse.GetValue(pools)![0], TimeSpan.FromSeconds(parse.GetValue(idle)), parse.GetValue(poolsDir)!);
    if (parse.GetValue(pools) is { Length: > 0 } poolCounts)
        return await LoadTest.RunManyPoolsAsync(poolCounts, TimeSpan.FromSeconds(parse.GetValue(idle)), parse.GetValue(json)?.FullName, cancellationToken);
    var extremeCallers = parse.GetValue(extreme);
    var sustained = parse.GetValue(duration) is not null;
    var isCompare = parse.GetValue(compare);
    var scenario = extremeCallers is not null ? ScenarioKind.Extreme : sustained ? ScenarioKind.Sustained : ScenarioKind.Burst;
    var callers = extremeCallers ?? parse.GetValue(connections) ?? (sustained ? parse.GetValue(workers) : 200);
    var settings = new LoadTestSettings
    {
        Provider = parse.GetValue(provider) switch
        {
            "postgres" or "postgresql" => ProviderKind.Postgres,
            "mysql" or "mariadb" => ProviderKind.MySql,
            _ => ProviderKind.Sqlite,
        },
        ConnectionString = parse.GetValue(connection),
        CovetOptions = parse.GetValue(covetOptions),
        Scenario = scenario,
        Callers = callers,
        Iterations = scenario == ScenarioKind.Extreme ? 1 : parse.GetValue(iterations),
        Duration = parse.GetValue(duration) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
        MaxPoolSize = parse.GetValue(maxPool) ?? (scenario == ScenarioKind.Extreme ? 100 : 20),
        MinPoolSize = parse.GetValue(minPool),
        AcquireTimeout = TimeSpan.FromSeconds(parse.GetValue(acquireTimeout)),
        Compare = isCompare,
        Rounds = parse.GetValue(rounds) ?? (isCompare ? 3 : 1),
        WarmUpBudget = TimeSpan.FromSeconds(parse.GetValue(warmUp) ?? (isCompare ? 20 : 5)),
        Query = parse.GetValue(query)!,
        Hold = TimeSpan.FromMilliseconds(parse.GetValue(hold)),
        ProbeWaiters = parse.GetValue(probeWaiters) ?? (scenario == ScenarioKind.Extreme ? callers : 1000),
        SampleInterval = TimeSpan.FromMilliseconds(parse.GetValue(sampleInterval)),
        JsonPath = parse.GetValue(json)?.FullName,
        HtmlPath = parse.GetValue(html)?.FullName,
        Plain = parse.GetValue(plain),
        AllowTimeouts = parse.GetValue(allowTimeouts),
    };
    return await LoadTest.RunAsync(settings, cancellationToken);
});

return await root.Parse(args).InvokeAsync();

namespace Covet.Data.LoadTest
{
    /// <summary>Runs the test, prints and writes the reports, and decides the exit code.</summary>
    internal static class LoadTest
    {
        /// <summary><c>--pools</c>: idle CPU and memory of many pools (see <see cref="ManyPools"/>).</summary>
        public static async Task<int> RunManyPoolsAsync(IReadOnlyList<int> counts, TimeSpan idle, string? jsonPath, CancellationToken cancellationToken)
        {
            if (Console.IsOutputRedirected)
                AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 140);
            var report = await ManyPools.RunAsync(counts, idle, line => AnsiConsole.WriteLine(line), cancellationToken);
            report.Write(AnsiConsole.Console);
            if (jsonPath is not null)
            {
                await JsonReport.WriteAsync(report, jsonPath);
                AnsiConsole.MarkupLine($"JSON report: {Markup.Escape(jsonPath)}");
            }
            return 0;
        }

        public static async Task<int> RunAsync(LoadTestSettings settings, CancellationToken cancellationToken)
        {
            if (Console.IsOutputRedirected)
                AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 140);

            ProviderProfile profile;
            try
            {
                profile = ProviderProfile.Create(settings);
            }
            catch (ArgumentException e)
            {
                AnsiConsole.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
                return 2;
            }

            await using (profile)
            {
                try
                {
                    await profile.CheckReachableAsync(cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    AnsiConsole.MarkupLine($"[red]Cannot connect to {Markup.Escape(profile.DisplayConnectionString)}: {Markup.Escape(e.Message)}[/]");
                    return 2;
                }

                try
                {
                    // Fails here, with the setting's name, rather than in the middle of the run.
                    await using var check = profile.CreateCovet(new PoolSettings(settings.MaxPoolSize, settings.MinPoolSize, settings.AcquireTimeout));
                }
                catch (CovetConfigurationException e)
                {
                    AnsiConsole.MarkupLine($"[red]Invalid Covet setting: {Markup.Escape(e.Message)}[/]");
                    return 2;
                }

                AnsiConsole.MarkupLine($"[bold]Covet.Data load test[/] · {Markup.Escape(profile.Name)} · {Markup.Escape(settings.Describe())}" +
                    (settings.Compare ? $" · vs {Markup.Escape(profile.ProviderPoolLabel)}, {settings.Rounds} rounds" : ""));

                var progress = IProgressSink.Create(settings.Plain);
                var report = await new ScenarioRunner(settings, profile, progress).RunAsync(cancellationToken);

                ConsoleReport.Write(report, AnsiConsole.Console);
                if (settings.JsonPath is { } jsonPath)
                {
                    await JsonReport.WriteAsync(report, jsonPath);
                    AnsiConsole.MarkupLine($"JSON report: {Markup.Escape(jsonPath)}");
                }
                if (settings.HtmlPath is { } htmlPath)
                {
                    await HtmlReport.WriteAsync(report, htmlPath);
                    AnsiConsole.MarkupLine($"HTML report: {Markup.Escape(htmlPath)}");
                }
                if (cancellationToken.IsCancellationRequested)
                {
                    AnsiConsole.MarkupLine("[yellow]Interrupted: the report covers what ran.[/]");
                    return 130;
                }
                return report.Failed ? 1 : 0;
            }
        }
    }
}
