using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using Dapper;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// The load of issue 12's hard-cap defect, as a new user would write it: many workers on a small pool, a fifth of the
/// opens with a token cancelled after 0–2 ms, sync and async opens, some borrowers closing with a transaction still
/// open, the pool cleared every few seconds. Meanwhile an observer counts the pool's connections <em>on the server</em>
/// (through its own unpooled admin connection, never through the pool) at a fixed interval.
/// </summary>
/// <remarks>
/// Threads: half the workers run on dedicated threads and mostly open synchronously (a blocked sync caller must not take
/// a thread-pool thread the async half and the drivers' continuations need); the other half are async tasks that only
/// open asynchronously. The
/// observer and the clearer have dedicated threads too, so thread-pool pressure never delays a sample or a clear — a
/// sample's timestamp is when it was really taken.
/// </remarks>
internal sealed class CapLoad
{
    public required int Workers { get; init; }
    public required TimeSpan Length { get; init; }
    public required TimeSpan ClearEvery { get; init; }
    /// <summary>How often the observer counts (back to back when a count takes longer).</summary>
    public required TimeSpan SampleEvery { get; init; }

    /// <summary>Creates a closed connection of the pool under test.</summary>
    public required Func<DbConnection> CreateConnection { get; init; }

    /// <summary>Clears the pool under test (closes its idle connections; borrowed ones close when returned).</summary>
    public required Action Clear { get; init; }

    /// <summary>Opens the observer's own connection (unpooled, not through the pool under test).</summary>
    public required Func<DbConnection> OpenObserver { get; init; }

    /// <summary>The statement that counts the pool's server connections on the observer's connection.</summary>
    public required string CountSql { get; init; }

    /// <summary>Its parameters (the application name, or the user).</summary>
    public required object CountParameters { get; init; }

    /// <summary>One count: the query was sent at <paramref name="From"/> and answered at <paramref name="To"/>.</summary>
    public sealed record Sample(TimeSpan From, TimeSpan To, int Count);

    public sealed record Result(IReadOnlyList<Sample> Samples, IReadOnlyList<TimeSpan> Clears, long Operations, long CancelledOpens,
        long OpenTransactionsLeft, IReadOnlyList<string> Unexpected);

    public Result Run(int seed)
    {
        var clock = Stopwatch.StartNew();
        var samples = new List<Sample>();
        var clears = new List<TimeSpan>();
        var unexpected = new ConcurrentQueue<string>();
        long operations = 0, cancelledOpens = 0, transactionsLeft = 0;
        var stop = new ManualResetEventSlim();

        // The observer's connection is opened before the load starts: the first sample is not delayed by a connect.
        using var observer = OpenObserver();
        // An exception on a thread of our own would crash the test host: each thread records it and stops the run.
        void Guarded(Action body, string what)
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                unexpected.Enqueue($"{what} failed at {clock.Elapsed.TotalMilliseconds:F0} ms: {e}");
                stop.Set();
            }
        }
        var observerThread = new Thread(() => Guarded(() =>
        {
            // A fixed schedule: one sample every SampleEvery, or back to back when the server (or a busy CPU) answers slower.
            var next = TimeSpan.Zero;
            while (!stop.IsSet)
            {
                var from = clock.Elapsed;
                next = from > next + SampleEvery ? from : next + SampleEvery;
                var count = observer.ExecuteScalar<int>(CountSql, CountParameters);
                var sample = new Sample(from, clock.Elapsed, count);
                lock (samples)
                    samples.Add(sample);
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                    stop.Wait(wait);
            }
        }, "the observer")) { IsBackground = true, Name = "cap-observer" };
        var clearThread = new Thread(() => Guarded(() =>
        {
            while (!stop.Wait(ClearEvery))
            {
                lock (clears)
                    clears.Add(clock.Elapsed); // before the call: a connection closed by it may linger from here on
                Clear();
            }
        }, "Clear()")) { IsBackground = true, Name = "cap-clear" };

        void Record(Outcome outcome)
        {
            if (outcome == Outcome.Cancelled)
            {
                Interlocked.Increment(ref cancelledOpens);
                return;
            }
            if (outcome == Outcome.LeftTransactionOpen)
                Interlocked.Increment(ref transactionsLeft);
            Interlocked.Increment(ref operations);
        }
        bool Failed(int worker, Exception e)
        {
            unexpected.Enqueue($"worker {worker} at {clock.Elapsed.TotalMilliseconds:F0} ms: {e.GetType().Name}: {e.Message}");
            return unexpected.Count > 20; // the report needs a few, not thousands
        }
        // A sync worker blocks on each operation from its own thread, so its sync opens never run on a thread-pool thread
        // (awaiting the whole loop instead would move it onto the pool after the first asynchronous hop).
        void SyncWorker(int worker)
        {
            var rng = new Random(seed * 1000 + worker);
            while (!stop.IsSet)
            {
                try
                {
                    Record(OperateAsync(rng, syncMostly: true).GetAwaiter().GetResult());
                }
                catch (Exception e)
                {
                    if (Failed(worker, e))
                        return;
                }
            }
        }
        async Task AsyncWorker(int worker)
        {
            var rng = new Random(seed * 1000 + worker);
            while (!stop.IsSet)
            {
                try
                {
                    Record(await OperateAsync(rng, syncMostly: false));
                }
                catch (Exception e)
                {
                    if (Failed(worker, e))
                        return;
                }
            }
        }

        var threads = new List<Thread> { observerThread, clearThread };
        var tasks = new List<Task>();
        for (var w = 0; w < Workers; w++)
        {
            var worker = w;
            if (worker % 2 == 0)
                threads.Add(new Thread(() => Guarded(() => SyncWorker(worker), $"worker {worker}")) { IsBackground = true, Name = $"cap-worker-{worker}" });
            else
                tasks.Add(Task.Run(() => AsyncWorker(worker)));
        }
        foreach (var thread in threads)
            thread.Start();

        stop.Wait(Length);
        stop.Set();
        var ended = threads.All(t => t.Join(TimeSpan.FromSeconds(30))) && Task.WaitAll([.. tasks], TimeSpan.FromSeconds(30));
        if (!ended)
            unexpected.Enqueue("the workers did not stop within 30 s of the end of the run");
        return new Result(samples, clears, operations, cancelledOpens, transactionsLeft, [.. unexpected]);
    }

    private enum Outcome { Used, LeftTransactionOpen, Cancelled }

    /// <summary>One borrower: open (a fifth with a token cancelled after 0–2 ms), one query, close (a quarter with a transaction open).</summary>
    private async Task<Outcome> OperateAsync(Random rng, bool syncMostly)
    {
        var connection = CreateConnection();
        try
        {
            // Sync opens only on the dedicated threads: a sync open on a thread-pool thread waits for a connection whose
            // borrower's continuation needs that pool (sync over async starves it, and the run would measure that instead).
            var sync = syncMostly && rng.Next(4) != 0;
            if (rng.Next(5) == 0)
            {
                using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(rng.NextDouble() * 2));
                try
                {
                    await connection.OpenAsync(cancel.Token);
                }
                catch (Exception) when (cancel.IsCancellationRequested)
                {
                    // Whatever the driver threw for a cancelled open (OperationCanceledException, or its own exception
                    // wrapping it) is the caller's expected outcome; what matters is what the server sees meanwhile.
                    return Outcome.Cancelled;
                }
                sync = false;
            }
            else if (sync)
            {
                connection.Open();
            }
            else
            {
                await connection.OpenAsync();
            }

            if (rng.Next(4) == 0)
            {
                // Closed with the transaction still open: the pool must roll it back (a reset with a round trip).
                var transaction = sync ? connection.BeginTransaction() : await connection.BeginTransactionAsync();
                _ = sync ? connection.ExecuteScalar<int>("select 1", transaction: transaction)
                    : await connection.ExecuteScalarAsync<int>("select 1", transaction: transaction);
                return Outcome.LeftTransactionOpen;
            }
            _ = sync ? connection.ExecuteScalar<int>("select 1") : await connection.ExecuteScalarAsync<int>("select 1");
            return Outcome.Used;
        }
        finally
        {
            if (syncMostly)
                connection.Dispose();
            else
                await connection.DisposeAsync();
        }
    }
}
