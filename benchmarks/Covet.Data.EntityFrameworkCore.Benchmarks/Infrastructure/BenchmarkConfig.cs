using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

/// <summary>
/// The suite's configuration (as in Covet.Data.Benchmarks): a short job (the machine has 2 cores shared with the database
/// server), plus the validator that checks the PostgreSQL connection string up front.
/// </summary>
public static class BenchmarkConfig
{
    /// <summary>
    /// The default job: 1 launch, 15 warmup and 10 measured iterations. EF Core needs the long warm-up: with 3 warmup
    /// iterations every case was still getting faster by ~5 % per iteration through all 8 measured ones (tiered JIT
    /// promoting EF's many methods), which made the means meaningless (a run measured 786 → 473 µs within one case).
    /// </summary>
    public static readonly Job ShortJob = Job.Default
        .WithLaunchCount(1)
        .WithWarmupCount(15)
        .WithIterationCount(10)
        .WithId("Short");

    public static IConfig Create(string[] args)
    {
        IConfig config = DefaultConfig.Instance.AddValidator(DatabaseEnvironmentValidator.Instance);
        // Results and logs go next to this project (BenchmarkDotNet's default is the current directory); --artifacts overrides.
        if (ProjectDirectory() is { } project)
            config = config.WithArtifactsPath(Path.Combine(project, "BenchmarkDotNet.Artifacts"));
        // With `--job X` on the command line (Dry, Short, Medium, ...) BenchmarkDotNet's job is used instead of ours; a job of
        // ours in the global config would be run in addition to it (or, marked as default, would make BenchmarkDotNet
        // ignore --job entirely). Other job options (--iterationCount, --warmupCount, ...) are applied on top of ours.
        return JobOnCommandLine(args) ? config : config.AddJob(ShortJob);
    }

    /// <summary>The directory of this project's csproj, found upwards from the executable (bin/Release/net10.0/).</summary>
    private static string? ProjectDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Covet.Data.EntityFrameworkCore.Benchmarks.csproj")))
                return dir.FullName;
        }
        return null;
    }

    private static bool JobOnCommandLine(string[] args) =>
        args.Any(a => a is "--job" or "-j" || a.StartsWith("--job=", StringComparison.Ordinal) || a.StartsWith("-j=", StringComparison.Ordinal));
}
