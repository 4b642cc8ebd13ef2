using System.Data.Common;
using System.Reflection;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Validators;

namespace Covet.Data.Benchmarks.Shared;

/// <summary>
/// What the benchmark projects share (this file is compiled into each): the configuration (a short default job, results
/// next to the project, the database check up front) and a run whose exit code says whether everything ran.
/// </summary>
public static class BenchmarkSuite
{
    /// <summary>A job of one launch with the given warmup and measured iterations, named "Short".</summary>
    public static Job ShortJob(int warmupCount, int iterationCount) => Job.Default
        .WithLaunchCount(1)
        .WithWarmupCount(warmupCount)
        .WithIterationCount(iterationCount)
        .WithId("Short");

    /// <summary>
    /// Runs the benchmarks of <paramref name="assembly"/> selected by <paramref name="args"/>. Returns 1 when a benchmark
    /// failed or the database check stopped the run (BenchmarkDotNet itself always returns 0), so scripts notice.
    /// </summary>
    /// <param name="assembly">The benchmark project's assembly.</param>
    /// <param name="args">The command line.</param>
    /// <param name="defaultJob">The job unless the command line names one.</param>
    /// <param name="validator">The database check (see <see cref="DatabaseEnvironmentValidator"/>).</param>
    public static int Run(Assembly assembly, string[] args, Job defaultJob, IValidator validator)
    {
        var suite = assembly.GetName().Name!;
        var summaries = BenchmarkSwitcher.FromAssembly(assembly).Run(args, Config(suite, args, defaultJob, validator));
        var failed = false;
        var printed = new HashSet<string>();
        foreach (var summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                failed = true;
                foreach (var error in summary.ValidationErrors.Where(e => e.IsCritical && printed.Add(e.Message)))
                    Console.Error.WriteLine($"{suite}: {error.Message}");
            }
            foreach (var report in summary.Reports.Where(r => !r.Success))
            {
                failed = true;
                Console.Error.WriteLine($"{suite}: FAILED {report.BenchmarkCase.DisplayInfo} (see the log above for the exception)");
            }
        }
        return failed ? 1 : 0;
    }

    private static IConfig Config(string suite, string[] args, Job defaultJob, IValidator validator)
    {
        IConfig config = DefaultConfig.Instance.AddValidator(validator);
        // Results and logs go next to the project (BenchmarkDotNet's default is the current directory); --artifacts overrides.
        if (ProjectDirectory(suite + ".csproj") is { } project)
            config = config.WithArtifactsPath(Path.Combine(project, "BenchmarkDotNet.Artifacts"));
        // With `--job X` on the command line (Dry, Short, Medium, ...) BenchmarkDotNet's job is used instead of ours; a job of
        // ours in the global config would be run in addition to it (or, marked as default, would make BenchmarkDotNet
        // ignore --job entirely). Other job options (--iterationCount, --warmupCount, ...) are applied on top of ours.
        return JobOnCommandLine(args) ? config : config.AddJob(defaultJob);
    }

    /// <summary>The directory of the project file, found upwards from the executable (bin/Release/net10.0/).</summary>
    private static string? ProjectDirectory(string projectFile)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, projectFile)))
                return dir.FullName;
        }
        return null;
    }

    private static bool JobOnCommandLine(string[] args) =>
        args.Any(a => a is "--job" or "-j" || a.StartsWith("--job=", StringComparison.Ordinal) || a.StartsWith("-j=", StringComparison.Ordinal));
}

/// <summary>
/// Runs before anything is built: for every database that a selected benchmark needs (by its category), checks that the
/// connection-string variable is set and that the server answers <c>SELECT 1</c>. A critical error stops the whole run
/// with one clear message instead of a failed benchmark per case.
/// </summary>
/// <param name="variableFor">The environment variable a category needs, or null for one that needs no database.</param>
/// <param name="missingMessage">The message when that variable is not set (variable, category).</param>
/// <param name="connect">An unpooled connection with a short connect timeout (category, connection string).</param>
/// <param name="otherwise">What the user may do instead of starting the server (category), appended to "not reachable".</param>
public sealed class DatabaseEnvironmentValidator(
    Func<string, string?> variableFor,
    Func<string, string, string> missingMessage,
    Func<string, string, DbConnection> connect,
    Func<string, string> otherwise) : IValidator
{
    public bool TreatsWarningsAsErrors => true;

    public IEnumerable<ValidationError> Validate(ValidationParameters validationParameters)
    {
        var needed = validationParameters.Benchmarks
            .SelectMany(b => b.Descriptor.Categories.Select(c => (Category: c, Case: b)))
            .Where(x => variableFor(x.Category) is not null)
            .GroupBy(x => x.Category);
        foreach (var group in needed)
        {
            var category = group.Key;
            var variable = variableFor(category)!;
            var connectionString = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(connectionString))
            {
                yield return new ValidationError(true, missingMessage(variable, category), group.First().Case);
                continue;
            }
            var failure = TrySelectOne(category, connectionString);
            if (failure is not null)
                yield return new ValidationError(true,
                    $"{category} from {variable} is not reachable ({failure}). Start it with `scripts/servers.sh start` and " +
                    $"`eval \"$(scripts/servers.sh env)\"`, {otherwise(category)}",
                    group.First().Case);
        }
    }

    private string? TrySelectOne(string category, string connectionString)
    {
        try
        {
            using var connection = connect(category, connectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            command.ExecuteScalar();
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }
}
