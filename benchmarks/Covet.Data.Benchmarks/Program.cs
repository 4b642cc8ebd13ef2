using BenchmarkDotNet.Running;
using Covet.Data.Benchmarks.Infrastructure;

namespace Covet.Data.Benchmarks;

/// <summary>
/// Entry point. Examples (from the repository root):
/// <code>
/// scripts/servers.sh start; eval "$(scripts/servers.sh env)"
/// dotnet run -c Release --project benchmarks/Covet.Data.Benchmarks -- --filter '*'
/// dotnet run -c Release --project benchmarks/Covet.Data.Benchmarks -- --filter '*OpenClose*' --job Dry
/// dotnet run -c Release --project benchmarks/Covet.Data.Benchmarks -- --filter '*' --anyCategories SQLite CPU
/// </code>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchmarkConfig.Create(args));

        // A non-zero exit code when anything did not run, so scripts notice (BenchmarkDotNet itself always returns 0).
        var failed = false;
        var printed = new HashSet<string>();
        foreach (var summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                failed = true;
                foreach (var error in summary.ValidationErrors.Where(e => e.IsCritical && printed.Add(e.Message)))
                    Console.Error.WriteLine($"Covet.Data.Benchmarks: {error.Message}");
            }
            foreach (var report in summary.Reports.Where(r => !r.Success))
            {
                failed = true;
                Console.Error.WriteLine($"Covet.Data.Benchmarks: FAILED {report.BenchmarkCase.DisplayInfo} (see the log above for the exception)");
            }
        }
        return failed ? 1 : 0;
    }
}
