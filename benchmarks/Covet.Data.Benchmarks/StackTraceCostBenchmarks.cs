using System.Diagnostics;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Covet.Data.Benchmarks.Infrastructure;
using Covet.Data.Health;

namespace Covet.Data.Benchmarks;

/// <summary>
/// What leak detection's capture costs per checkout: <c>CheckoutStackTrace.Capture()</c> (= <c>new StackTrace(1, false)</c>,
/// the exact call Covet makes in <c>CovetPool.CheckOut</c>) at <see cref="Depth"/> extra frames below BenchmarkDotNet's own,
/// vs the same recursion without the capture (the baseline, to subtract).
/// </summary>
/// <remarks>
/// Depth 10 is a console app calling Open; 50 is closer to an ASP.NET Core request (middleware, MVC, async state machines).
/// The total frame count captured (BenchmarkDotNet's frames included) is printed by the global setup.
/// </remarks>
[MemoryDiagnoser]
[BenchmarkCategory(Databases.Cpu)]
public class StackTraceCostBenchmarks
{
    [Params(10, 50)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var trace = (StackTrace)Recurse(Depth, capture: true)!;
        Console.WriteLine($"// stack-trace depth {Depth}: {trace.FrameCount} frames captured");
    }

    [Benchmark(Baseline = true)]
    public object? RecurseOnly() => Recurse(Depth, capture: false);

    [Benchmark]
    public object? RecurseAndCapture() => Recurse(Depth, capture: true);

    private static int s_sink;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static object? Recurse(int depth, bool capture)
    {
        if (depth > 1)
        {
            var result = Recurse(depth - 1, capture);
            s_sink = depth; // work after the call: it cannot become a tail call (which would drop the frame)
            return result;
        }
        return capture ? CheckoutStackTrace.Capture() : null;
    }
}
