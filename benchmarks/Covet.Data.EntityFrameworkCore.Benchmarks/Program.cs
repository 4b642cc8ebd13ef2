using BenchmarkDotNet.Running;
using Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

namespace Covet.Data.EntityFrameworkCore.Benchmarks;

/// <summary>
/// Entry point. Examples (from the repository root):
/// <code>
/// scripts/servers.sh start; eval "$(scripts/servers.sh env)"
/// dotnet run -c Release --project benchmarks/Covet.Data.EntityFrameworkCore.Benchmarks -- --filter '*'
/// dotnet run -c Release --project benchmarks/Covet.Data.EntityFrameworkCore.Benchmarks -- --filter '*' --job Dry
/// dotnet run -c Release --project benchmarks/Covet.Data.EntityFrameworkCore.Benchmarks -- --filter '*EfQuery*'
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
                    Console.Error.WriteLine($"Covet.Data.EntityFrameworkCore.Benchmarks: {error.Message}");
            }
            foreach (var report in summary.Reports.Where(r => !r.Success))
            {
                failed = true;
                Console.Error.WriteLine($"Covet.Data.EntityFrameworkCore.Benchmarks: FAILED {report.BenchmarkCase.DisplayInfo} (see the log above for the exception)");
            }
        }
        return failed ? 1 : 0;
    }
}
