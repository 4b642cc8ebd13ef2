using Covet.Data.Benchmarks.Shared;
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
    public static int Main(string[] args) =>
        BenchmarkSuite.Run(typeof(Program).Assembly, args, BenchmarkConfig.ShortJob, BenchmarkConfig.Validator);
}
