using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Covet.Data.LoadTest.Measurement;
using Covet.Data.LoadTest.Progress;
using Covet.Data.LoadTest.Reporting;
using Dapper;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>
/// One timed run: <c>callers</c> concurrent callers released together, each repeating open → query (Dapper) → close
/// until it has done <c>iterations</c> operations or the duration is over. Every caller measures its own acquire time
/// (<c>OpenAsync</c>) and use time (open → close); a sampler records the pool's counts every ~100 ms.
/// </summary>
public sealed partial class Workload(ProviderProfile profile, LoadTestSettings settings)
{
    /// <summary>What one run does.</summary>
    /// <param name="Callers">Concurrent callers.</param>
    /// <param name="Iterations">Operations per caller, when <paramref name="Duration"/> is null.</param>
    /// <param name="Duration">Run for this long instead of a count.</param>
    public sealed record Shape(int Callers, int Iterations, TimeSpan? Duration);

    private sealed class RunState(LoadTestSettings settings, Shape shape, CancellationToken cancellationToken)
    {
        public readonly LoadTestSettings Settings = settings;
        public readonly Shape Shape = shape;
        public readonly CancellationToken CancellationToken = cancellationToken;
        public readonly WorkloadCounters Counters = new();
        public readonly LatencyRecorder Acquire = new();
        public readonly LatencyRecorder Use = new();
        public readonly ConcurrentDictionary<string, long> Errors = new();
        public readonly TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long Deadline = long.MaxValue;
        public long Timeouts;
        public long Cancelled;
        public long DisposeFailures; // counted as failures on top of the operations' own outcome
    }

    /// <summary>Runs <paramref name="shape"/> on <paramref name="pool"/> and measures it.</summary>
    public async Task<RunResult> RunAsync(PoolUnderTest pool, Shape shape, int round, IProgressPhase phase, CancellationToken cancellationToken)
    {
        var state = new RunState(settings, shape, cancellationToken);
        var expected = shape.Duration is null ? (double)shape.Callers * shape.Iterations : 0;
        var started = 0L;

        using var sampler = new PoolSampler(pool, state.Counters, settings.SampleInterval, sample =>
        {
            var elapsed = started == 0 ? 0 : Stopwatch.GetElapsedTime(started).TotalSeconds;
            var progress = shape.Duration is { } d ? Math.Min(elapsed, d.TotalSeconds) : sample.Completed + sample.Failed;
            phase.Update(progress, Detail(sample, elapsed));
        });

        // Every caller starts now and parks on the gate, so they all hit the pool at the same moment.
        var callers = new Task[shape.Callers];
        for (var i = 0; i < callers.Length; i++)
            callers[i] = CallerAsync(pool.DataSource, state);

        sampler.Start();
        started = Stopwatch.GetTimestamp();
        if (shape.Duration is { } duration)
            state.Deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        state.Gate.SetResult();
        await Task.WhenAll(callers);
        var elapsedSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;

        // Covet resets some connections in the background after Close; give the pool a moment to settle before
        // checking that nothing is left in use.
        bool? drained = null;
        CovetStatisticsSummary? statistics = null;
        if (pool.Covet is { } covet)
        {
            var settle = Stopwatch.StartNew();
            CovetPoolStatistics s;
            while (((s = covet.GetStatistics()).InUse > 0 || s.Waiting > 0) && settle.Elapsed < TimeSpan.FromSeconds(5))
                await Task.Delay(20, CancellationToken.None);
            drained = s.InUse == 0 && s.Waiting == 0;
            statistics = CovetStatisticsSummary.From(s);
        }
        sampler.Stop();

        var samples = sampler.Samples;
        return new RunResult
        {
            Pool = pool.Kind,
            Label = pool.Label,
            Round = round,
            Operations = state.Counters.Completed + state.Counters.Failed,
            Succeeded = state.Counters.Completed,
            Failed = state.Counters.Failed - state.Timeouts - state.Cancelled + state.DisposeFailures,
            AcquireTimeouts = state.Timeouts,
            Cancelled = state.Cancelled,
            ElapsedSeconds = elapsedSeconds,
            Acquire = state.Acquire.Summarize(),
            Use = state.Use.Summarize(),
            AcquireSamples = state.Acquire,
            UseSamples = state.Use,
            PeakPhysicalConnections = samples.Max(s => s.Total),
            PeakCallersOpening = samples.Count == 0 ? 0 : samples.Max(s => s.Opening),
            PoolStatistics = statistics,
            Drained = drained,
            Errors = new SortedDictionary<string, long>(state.Errors),
            Samples = samples.ToList(),
        };
    }

    private async Task CallerAsync(DbDataSource dataSource, RunState state)
    {
        await state.Gate.Task.ConfigureAwait(false);
        var acquire = state.Acquire.CreateLocal();
        var use = state.Use.CreateLocal();
        try
        {
            if (state.Shape.Duration is null)
            {
                for (var i = 0; i < state.Shape.Iterations && !state.CancellationToken.IsCancellationRequested; i++)
                    await OperationAsync(dataSource, state, acquire, use).ConfigureAwait(false);
            }
            else
            {
                while (Stopwatch.GetTimestamp() < state.Deadline && !state.CancellationToken.IsCancellationRequested)
                    await OperationAsync(dataSource, state, acquire, use).ConfigureAwait(false);
            }
        }
        finally
        {
            acquire.Flush();
            use.Flush();
        }
    }

    /// <summary>One open → query → close. Never throws: failures are counted and classified.</summary>
    private async Task OperationAsync(DbDataSource dataSource, RunState state, LatencyRecorder.Local acquire, LatencyRecorder.Local use)
    {
        var counters = state.Counters;
        DbConnection? connection = null;
        var holding = false;
        try
        {
            connection = dataSource.CreateConnection();
            var t0 = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref counters.Opening);
            try
            {
                await connection.OpenAsync(state.CancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref counters.Opening);
            }
            var t1 = Stopwatch.GetTimestamp();
            acquire.Add(t0, t1);
            Interlocked.Increment(ref counters.Holding);
            holding = true;

            await connection.ExecuteScalarAsync<int>(new CommandDefinition(state.Settings.Query, cancellationToken: state.CancellationToken)).ConfigureAwait(false);
            // Stand-in for the rest of a request. At least one real await while holding the connection, continuing behind
            // the other callers like an I/O completion: SQLite completes "async" calls synchronously, and without it
            // callers would run one after another instead of overlapping as they do when every call goes over a network.
            if (state.Settings.Hold > TimeSpan.Zero)
                await Task.Delay(state.Settings.Hold, state.CancellationToken).ConfigureAwait(false);
            else
                await new ThreadPoolHop();
            await connection.CloseAsync().ConfigureAwait(false);
            use.Add(t1, Stopwatch.GetTimestamp());
            Interlocked.Increment(ref counters.Completed);
        }
        catch (Exception e)
        {
            if (e is OperationCanceledException && state.CancellationToken.IsCancellationRequested)
            {
                Interlocked.Increment(ref state.Cancelled); // Ctrl+C: not an error
            }
            else
            {
                if (profile.IsAcquireTimeout(e))
                    Interlocked.Increment(ref state.Timeouts);
                state.Errors.AddOrUpdate(Describe(e), 1, static (_, n) => n + 1);
            }
            Interlocked.Increment(ref counters.Failed);
        }

        if (connection is not null)
        {
            try
            {
                await connection.DisposeAsync().ConfigureAwait(false); // already closed unless the operation failed
            }
            catch (Exception e)
            {
                state.Errors.AddOrUpdate("on dispose: " + Describe(e), 1, static (_, n) => n + 1);
                Interlocked.Increment(ref state.DisposeFailures);
            }
        }
        if (holding)
            Interlocked.Decrement(ref counters.Holding);
    }

    /// <summary>
    /// An error as "Type: first line of the message" with numbers replaced by '#', so errors that differ only by the counts
    /// in their message (Covet's timeout message gives the number of waiters) group together.
    /// </summary>
    public static string Describe(Exception e)
    {
        var message = Numbers().Replace(e.Message.Split('\n', 2)[0].Trim(), "#");
        if (message.Length > 160)
            message = message[..160] + "…";
        return $"{e.GetType().Name}: {message}";
    }

    [GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial Regex Numbers();

    private static string Detail(PoolSample s, double elapsed)
    {
        var rate = elapsed > 0 ? s.Completed / elapsed : 0;
        var pool = s.Total is { } total
            ? $"in use {s.InUse}/{total}{(s.Waiting is { } w ? $" · waiting {w:N0}" : $" · opening {s.Opening:N0}")}"
            : $"holding {s.Holding:N0} · opening {s.Opening:N0}";
        return $"{s.Completed:N0} ops · {rate:N0}/s · {pool}{(s.Failed > 0 ? $" · errors {s.Failed:N0}" : "")}";
    }
}
