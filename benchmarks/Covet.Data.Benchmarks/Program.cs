using Covet.Data.Benchmarks.Infrastructure;
using Covet.Data.Benchmarks.Shared;

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
    public static int Main(string[] args) =>
        BenchmarkSuite.Run(typeof(Program).Assembly, args, BenchmarkConfig.ShortJob, BenchmarkConfig.Validator);
}
