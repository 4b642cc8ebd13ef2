using System.Diagnostics;
using System.Runtime;
using System.Text.Json;
using Covet.Data.LoadTest.Reporting;
using Microsoft.Data.Sqlite;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>
/// <c>--pools N</c>: what thousands of idle pools cost (an application with a database per tenant). N connection
/// strings, one SQLite file each; one open → close on each; then the process sits idle. Measured: the process's CPU
/// time (user + system) burned while idle, and the managed memory each pool keeps.
/// </summary>
/// <remarks>
/// Covet is used as such an application would: one <see cref="CovetProviderFactory"/> over <see cref="SqliteFactory"/>,
/// so every connection string gets its own pool with the default options (one idle physical connection each). The
/// provider's side is Microsoft.Data.Sqlite's own pool (on by default), one pool per connection string too.
/// Each side is measured in a fresh child process of its own (this executable, started again with a hidden flag), so
/// neither pays for the other's JIT, statics or garbage. The files are created empty by the parent beforehand (SQLite
/// treats an empty file as an empty database) and deleted afterwards.
/// Memory: the live managed heap after a full, blocking, compacting collection, before and after the N open → close
/// cycles, divided by N; one pool on another file is opened first so the first call's statics are not counted.
/// CPU: <see cref="Process.TotalProcessorTime"/> (user + system) across the idle window, and across the part of it from
/// <see cref="Settle"/> on, when the JIT's background compilations of the setup loop are over (steady).
/// </remarks>
public static class ManyPools
{
    /// <summary>The hidden flag that makes this executable the child measuring one side.</summary>
    public const string ChildFlag = "--pools-child";

    /// <summary>Marks the child's result line on its standard output.</summary>
    private const string ResultMarker = "COVET-MANY-POOLS-RESULT ";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Quiet time after the setup before the idle window starts (see <see cref="RunChild"/>).</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    /// <summary>The parent: for each count, creates the files and runs both children one after the other.</summary>
    public static async Task<ManyPoolsReport> RunAsync(IReadOnlyList<int> counts, TimeSpan idle, Action<string> progress, CancellationToken cancellationToken)
    {
        var results = new List<ManyPoolsResult>();
        foreach (var count in counts)
        {
            var directory = Directory.CreateTempSubdirectory("covet-many-pools-");
            try
            {
                progress($"» {count:N0} pools: creating {count + 1:N0} empty SQLite files in {directory.FullName}");
                for (var i = 0; i <= count; i++)
                    await File.WriteAllBytesAsync(FilePath(directory.FullName, i), [], cancellationToken);
                foreach (var kind in new[] { PoolKind.Covet, PoolKind.Provider })
                {
                    progress($"» {count:N0} pools, {Label(kind)}: a fresh process, then {idle.TotalSeconds:0.#} s idle");
                    results.Add(await RunChildAsync(kind, count, idle, directory.FullName, cancellationToken));
                    progress($"  {Describe(results[^1])}");
                }
            }
            finally
            {
                SqliteConnection.ClearAllPools();
                directory.Delete(recursive: true);
            }
        }
        return new ManyPoolsReport
        {
            Tool = "Covet.Data.LoadTest --pools",
            StartedAt = DateTimeOffset.Now,
            ProcessorCount = Environment.ProcessorCount,
            Runtime = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            IdleSeconds = idle.TotalSeconds,
            Results = results,
        };
    }

    private static string Label(PoolKind kind) => kind == PoolKind.Covet ? "Covet (CovetProviderFactory over SqliteFactory)" : "Microsoft.Data.Sqlite's pool";

    private static string Describe(ManyPoolsResult r) =>
        $"idle CPU {r.IdleCpuMs:N0} ms in {r.IdleSeconds:0.0} s (steady: {r.SteadyCpuMs:N0} ms in the last {r.SteadySeconds:0.0} s) · {Format.Bytes(r.BytesPerPool)} per pool · {r.Threads} threads · setup {r.SetupSeconds:0.0} s";

    private static string FilePath(string directory, int index) => Path.Combine(directory, $"tenant{index}.db");

    private static async Task<ManyPoolsResult> RunChildAsync(PoolKind kind, int count, TimeSpan idle, string directory, CancellationToken cancellationToken)
    {
        // This executable again: the apphost, or `dotnet covet-loadtest.dll` when started that way.
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable is running");
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            info.ArgumentList.Add(typeof(ManyPools).Assembly.Location);
        foreach (var argument in new[] { ChildFlag, kind.ToString(), "--pools", count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--idle", idle.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "--pools-dir", directory })
            info.ArgumentList.Add(argument);
        using var child = Process.Start(info) ?? throw new InvalidOperationException($"could not start {self}");
        var stdout = child.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = child.StandardError.ReadToEndAsync(cancellationToken);
        await child.WaitForExitAsync(cancellationToken);
        var line = (await stdout).Split('\n').FirstOrDefault(l => l.StartsWith(ResultMarker, StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
            throw new InvalidOperationException($"the {kind} child exited with {child.ExitCode}: {await stderr}{await stdout}");
        return JsonSerializer.Deserialize<ManyPoolsResult>(line[ResultMarker.Length..], Json)!;
    }

    /// <summary>The child: measures one side and prints its result on one marked line.</summary>
    public static int RunChild(PoolKind kind, int count, TimeSpan idle, string directory)
    {
        var setup = Stopwatch.StartNew();
        var covet = kind == PoolKind.Covet ? new CovetProviderFactory(SqliteFactory.Instance) : null;
        void OpenClose(int index)
        {
            using var connection = covet is null ? new SqliteConnection() : covet.CreateConnection()!;
            connection.ConnectionString = $"Data Source={FilePath(directory, index)}";
            connection.Open();
            connection.Close();
        }

        OpenClose(count); // the extra file: the first open's assemblies, JIT and statics are not any pool's cost
        var before = LiveHeap();
        for (var i = 0; i < count; i++)
            OpenClose(i);
        var after = LiveHeap();
        setup.Stop();

        // CPU is read at the start of the idle window, Settle into it and at its end: the whole window is what the issue
        // measured (it includes the tier-1 compilations the setup loop queued and the finalizers of its connection
        // objects, most of the provider's figure), the rest of it is what idle pools cost in the long run.
        var settle = idle / 2 < Settle ? idle / 2 : Settle;
        using var self = Process.GetCurrentProcess();
        var cpuStart = CpuTime(self);
        var idleClock = Stopwatch.StartNew();
        Thread.Sleep(settle);
        var cpuSettled = CpuTime(self);
        var steadyClock = Stopwatch.StartNew();
        Thread.Sleep(idle - settle);
        var cpuEnd = CpuTime(self);
        idleClock.Stop();
        steadyClock.Stop();
        var result = new ManyPoolsResult
        {
            Pool = kind,
            Label = Label(kind),
            Pools = count,
            IdleSeconds = idleClock.Elapsed.TotalSeconds,
            IdleCpuMs = (cpuEnd - cpuStart).TotalMilliseconds,
            SteadySeconds = steadyClock.Elapsed.TotalSeconds,
            SteadyCpuMs = (cpuEnd - cpuSettled).TotalMilliseconds,
            BytesPerPool = (double)(after - before) / count,
            HeapBytesBefore = before,
            HeapBytesAfter = after,
            Threads = self.Threads.Count,
            SetupSeconds = setup.Elapsed.TotalSeconds,
        };
        Console.WriteLine(ResultMarker + JsonSerializer.Serialize(result, Json));

        if (covet is not null)
            CovetDbConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();
        return 0;
    }

    private static TimeSpan CpuTime(Process process)
    {
        process.Refresh();
        return process.TotalProcessorTime;
    }

    /// <summary>Live managed bytes after a full, blocking, compacting collection (large objects compacted too).</summary>
    private static long LiveHeap()
    {
        for (var i = 0; i < 2; i++)
        {
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: false);
    }
}
