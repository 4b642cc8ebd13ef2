using System.Data.Common;
using System.Diagnostics;
using Covet.Data.LoadTest.Progress;
using Covet.Data.LoadTest.Reporting;
using Dapper;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>
/// Measures the managed memory a pool retains per pooled connection and per caller waiting for a connection.
/// </summary>
/// <remarks>
/// <para>Method: retained heap, not allocations. Each measurement is the live managed heap right after a full, blocking,
/// compacting collection (see <see cref="Heap"/>; the same idea as <c>GC.GetTotalMemory(forceFullCollection: true)</c>
/// without its allocation-context noise), taken before and after a state change, divided by the number of things the
/// change added. Allocation counters (<see cref="GC.GetAllocatedBytesForCurrentThread"/>) would count garbage too, and
/// miss what other threads allocate.</para>
/// <para><b>Per pooled connection.</b> A fresh pool; one connection opened, used and closed first (so one-off costs such as
/// Npgsql's type catalogue and JIT are paid before the baseline). Baseline. Then <c>MaxPoolSize</c> connections are
/// opened together, each runs the query, and all are closed: the pool now holds <c>MaxPoolSize</c> idle physical
/// connections, <c>MaxPoolSize − 1</c> more than at the baseline. Bytes per pooled connection =
/// (after − baseline) / (MaxPoolSize − 1), the median of three fresh pools (a one-off release elsewhere in the process,
/// such as the thread-static caches of a retiring thread-pool thread, can otherwise swing one measurement by tens of
/// kilobytes). It includes the provider's physical connection (buffers, socket) as well as
/// the pool's own bookkeeping, for Covet and the provider's pool alike.</para>
/// <para><b>Per waiting caller.</b> All <c>MaxPoolSize</c> connections are opened and held (the pool is exhausted).
/// Baseline. Then W callers each create a connection and call <c>OpenAsync</c> with a cancellable token, which cannot
/// complete; once all W are known to be blocked (Covet: <see cref="CovetPoolStatistics.Waiting"/> = W; the provider:
/// every caller has entered <c>OpenAsync</c> and none has come back), the heap is measured again. The holders are then
/// released and every waiter must complete its query. The figure is reported whole and broken down:</para>
/// <list type="bullet">
/// <item><b>Total</b> = (after − baseline) / W − harness, where harness is the same measurement with callers that await
/// a task that never completes instead of <c>OpenAsync</c> (the caller's own async state machine and task, which any
/// application has too).</item>
/// <item><b>Of which the caller's connection object</b>: the heap retained by W connections made with
/// <c>source.CreateConnection()</c> and kept, never opened, divided by W. The caller creates it whether or not it
/// ever waits, and a bigger provider connection (Npgsql's) makes the provider's total bigger for that reason alone.</item>
/// <item><b>Of which the cancellation registration</b>: the heap retained by W registrations on a cancellable token,
/// divided by W: the runtime's node that any pool must allocate to watch the caller's token while it waits.</item>
/// <item><b>The pool's own</b> = total − connection object − registration: what the pool itself keeps per waiting
/// caller.</item>
/// </list>
/// <para>The waiters' token is a fresh <see cref="CancellationTokenSource"/> (linked to the run's, so Ctrl+C still
/// ends them), and so is the registration harness's: a token source keeps the nodes of disposed registrations for
/// reuse, so on the run's token, which every timed caller registered on, some or all of the waiters' registrations
/// would cost nothing and the breakdown would depend on what ran before.</para>
/// </remarks>
public sealed class MemoryProbe(ProviderProfile profile, LoadTestSettings settings)
{
    private static double? _harnessBytesPerCaller;
    private static double? _registrationBytesPerCaller;

    /// <summary>Measures <paramref name="kind"/> on a fresh pool of its own.</summary>
    public async Task<MemoryProbeResult> RunAsync(PoolKind kind, IProgressPhase phase, CancellationToken cancellationToken)
    {
        var max = settings.MaxPoolSize;
        var waiters = settings.ProbeWaiters;
        // The probe's waiters must not time out while the heap is being measured.
        var poolSettings = new PoolSettings(max, 0, TimeSpan.FromMinutes(2));

        // --- Per pooled connection: the median of three fresh pools ------------------------------------------
        var perConnection = new List<double>();
        string? note = null;
        for (var attempt = 0; attempt < 3 && max >= 2; attempt++)
        {
            phase.Update(attempt * 0.33, "measuring idle connections");
            await using var fresh = PoolUnderTest.Create(profile, kind, poolSettings);
            await FillPoolAsync(fresh.DataSource, 1, settings.Query, cancellationToken);
            await Task.Delay(300, cancellationToken); // a new pool releases some start-up garbage in its first moments
            var before = Heap();
            await FillPoolAsync(fresh.DataSource, max, settings.Query, cancellationToken);
            await Task.Delay(200, cancellationToken); // background resets (Covet on a network database) finish
            var after = Heap();
            perConnection.Add((after - before) / (double)(max - 1));
            if (fresh.Snapshot() is { } s && s.Total != max)
                note = $"expected {max} pooled connections after filling the pool, it reports {s.Total}. ";
        }
        perConnection.Sort();

        await using var pool = PoolUnderTest.Create(profile, kind, poolSettings);
        var source = pool.DataSource;
        await FillPoolAsync(source, 1, settings.Query, cancellationToken);

        // --- Per waiting caller -------------------------------------------------------------------------------
        if (kind == PoolKind.Provider && !profile.ProviderPoolHasMaximum)
        {
            return new MemoryProbeResult
            {
                PooledConnections = max - 1,
                BytesPerPooledConnection = Median(perConnection),
                PooledConnectionSamples = perConnection,
                Note = note + $"{profile.ProviderPoolLabel} has no maximum: callers never wait.",
            };
        }

        phase.Update(2, $"measuring {waiters:N0} waiting callers");
        var harness = _harnessBytesPerCaller ??= MeasureHarness(source, settings.Query, waiters);
        var registration = _registrationBytesPerCaller ??= MeasureRegistrations(waiters);
        var connectionObject = MeasureConnectionObjects(source, waiters);
        var holders = await Task.WhenAll(Enumerable.Range(0, max).Select(_ => OpenAsync(source, cancellationToken)));
        var tasks = new Task[waiters];
        var entered = new StrongBox<int>();
        using var waitersCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await Task.Delay(300, cancellationToken);
        var baseline = Heap();
        for (var i = 0; i < waiters; i++)
            tasks[i] = WaiterAsync(source, entered, settings.Query, waitersCancellation.Token);
        var blocked = await AllBlockedAsync(pool, tasks, entered, waiters);
        var waiting = Heap();
        GC.KeepAlive(tasks);

        phase.Update(3, "releasing the waiters");
        foreach (var holder in holders)
            await holder.DisposeAsync();
        long errors = 0;
        try
        {
            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(2), cancellationToken);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            errors = tasks.Count(t => !t.IsCompletedSuccessfully);
        }

        return new MemoryProbeResult
        {
            PooledConnections = max - 1,
            BytesPerPooledConnection = Median(perConnection),
            PooledConnectionSamples = perConnection,
            WaitingCallers = waiters,
            BytesPerWaitingCaller = blocked ? (waiting - baseline) / (double)waiters - harness : null,
            ConnectionObjectBytesPerCaller = blocked ? connectionObject : null,
            CancellationRegistrationBytesPerCaller = blocked ? registration : null,
            HarnessBytesPerCaller = harness,
            Note = blocked ? note : note + "the waiters did not all block within 30 s; no figure.",
            Errors = errors,
        };
    }

    private static double? Median(List<double> sorted) => sorted.Count == 0 ? null : sorted[sorted.Count / 2];

    private static async Task<DbConnection> OpenAsync(DbDataSource source, CancellationToken cancellationToken)
    {
        var connection = source.CreateConnection();
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    /// <summary>
    /// Opens <paramref name="count"/> connections at once, uses and closes them, leaving them idle in the pool. A method of
    /// its own so that no reference to the logical connections survives in the caller's async state machine.
    /// </summary>
    private static async Task FillPoolAsync(DbDataSource source, int count, string query, CancellationToken cancellationToken)
    {
        var opened = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => OpenAsync(source, cancellationToken)));
        foreach (var connection in opened)
            await connection.ExecuteScalarAsync<int>(query);
        foreach (var connection in opened)
            await connection.DisposeAsync();
    }

    private static async Task WaiterAsync(DbDataSource source, StrongBox<int> entered, string query, CancellationToken cancellationToken)
    {
        await using var connection = source.CreateConnection();
        Interlocked.Increment(ref entered.Value);
        await connection.OpenAsync(cancellationToken);
        await connection.ExecuteScalarAsync<int>(query);
    }

    /// <summary>What <see cref="FakeWaiterAsync"/> awaits instead of OpenAsync (a static, not a parameter, so the two state machines match).</summary>
    private static Task _never = Task.CompletedTask;

    // The same parameters, locals and awaits as WaiterAsync (a Task, a Task<int> and the await using's ValueTask), so the
    // compiler gives it a state machine of the same size; it creates no connection and its OpenAsync never returns.
    private static async Task FakeWaiterAsync(DbDataSource source, StrongBox<int> entered, string query, CancellationToken cancellationToken)
    {
        await using var connection = (DbConnection?)null;
        Interlocked.Increment(ref entered.Value);
        await _never;
        if (connection is not null && !cancellationToken.IsCancellationRequested)
            await connection.ExecuteScalarAsync<int>(query); // never runs: only its awaiter field matters
        GC.KeepAlive(source);
    }

    /// <summary>Waits until every waiter is blocked in <c>OpenAsync</c>.</summary>
    private static async Task<bool> AllBlockedAsync(PoolUnderTest pool, Task[] tasks, StrongBox<int> entered, int waiters)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            var anyCompleted = tasks.Any(t => t.IsCompleted);
            if (anyCompleted)
                return false; // a waiter got a connection or failed: the pool was not exhausted
            var ready = pool.Covet is { } covet
                ? covet.GetStatistics().Waiting == waiters
                : Volatile.Read(ref entered.Value) == waiters;
            if (ready)
            {
                // Let any work the opens queued (timers, continuations) settle.
                await Task.Delay(200);
                return !tasks.Any(t => t.IsCompleted);
            }
            await Task.Delay(20);
        }
        return false;
    }

    /// <summary>Bytes per caller of callers that await a task that never completes (the caller's own cost).</summary>
    private static double MeasureHarness(DbDataSource source, string query, int callers)
    {
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _never = never.Task;
        var tasks = new Task[callers];
        var entered = new StrongBox<int>();
        var before = Heap();
        for (var i = 0; i < callers; i++)
            tasks[i] = FakeWaiterAsync(source, entered, query, CancellationToken.None);
        var after = Heap();
        never.SetResult();
        Task.WaitAll(tasks);
        return (after - before) / (double)callers;
    }

    /// <summary>
    /// Bytes per connection object of <paramref name="count"/> connections made with <c>CreateConnection</c> and kept,
    /// never opened: what each waiting caller holds before the pool sees it.
    /// </summary>
    private static double MeasureConnectionObjects(DbDataSource source, int count)
    {
        var connections = new DbConnection[count]; // allocated before the baseline: the array is the probe's, not theirs
        var before = Heap();
        for (var i = 0; i < count; i++)
            connections[i] = source.CreateConnection();
        var after = Heap();
        foreach (var connection in connections)
            connection.Dispose();
        return (after - before) / (double)count;
    }

    /// <summary>
    /// Bytes per registration of <paramref name="count"/> registrations on a fresh cancellable token, kept: the node a
    /// pool allocates to watch a waiting caller's token.
    /// </summary>
    private static double MeasureRegistrations(int count)
    {
        using var source = new CancellationTokenSource();
        var registrations = new CancellationTokenRegistration[count]; // allocated before the baseline, like the connections
        var before = Heap();
        for (var i = 0; i < count; i++)
            registrations[i] = source.Token.UnsafeRegister(static _ => { }, null);
        var after = Heap();
        foreach (var registration in registrations)
            registration.Dispose();
        return (after - before) / (double)count;
    }

    /// <summary>
    /// Live managed bytes right after a full, blocking, compacting collection: the size of every generation after that
    /// collection less its fragmentation. Unlike <see cref="GC.GetTotalMemory(bool)"/> read afterwards, it does not
    /// count the 8 KB allocation contexts threads grab as soon as they allocate again, which made single readings jump
    /// by multiples of 8 KB.
    /// </summary>
    private static long Heap()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        var info = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        long live = 0;
        foreach (var generation in info.GenerationInfo)
            live += generation.SizeAfterBytes - generation.FragmentationAfterBytes;
        return live;
    }

    private sealed class StrongBox<T>
    {
        public T Value = default!;
    }
}
