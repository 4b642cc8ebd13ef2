using System.Collections.Concurrent;
using System.Data;
using System.Diagnostics;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;
using Dapper;

namespace Covet.Data.Tests.Pooling;

[TestClass]
[DoNotParallelize] // its sync callers block thread-pool threads on purpose: a test running beside it would be starved too
public sealed class StressTests
{
    private const int Max = 4;
    private const int Workers = 16;
    private const int Iterations = 300;

    [TestMethod]
    public async Task MixedWorkload_ManyCallers_PoolInvariantsHold()
    {
        await using var pool = TestPool.Create(o =>
        {
            o.MaxPoolSize = Max;
            o.ResetQuery = "RESET ALL";
            o.AcquireTimeout = TimeSpan.FromHours(1);     // the fake clock runs fast: callers must not time out on a busy machine
            o.AutoScale = true;
            o.MaxCheckoutDuration = TimeSpan.Zero;        // borrowers here are never leaks
            o.HealthCheckInterval = TimeSpan.FromSeconds(20);
        });
        var unexpected = new ConcurrentQueue<string>();
        var outcomes = new ConcurrentDictionary<string, int>();
        var maxTotalSeen = 0;
        var done = 0;

        // The clock moves on in the background: maintenance, alive windows, health checks and timeouts all get their turn.
        var driver = new Thread(() =>
        {
            while (Volatile.Read(ref done) == 0)
            {
                pool.Time.Advance(TimeSpan.FromMilliseconds(20));
                var stats = pool.Stats;
                InterlockedMax(ref maxTotalSeen, stats.Total);
                InterlockedMax(ref maxTotalSeen, pool.Server.OpenConnections);
                Thread.Sleep(1);
            }
        }) { IsBackground = true, Name = "stress-clock" };
        driver.Start();

        var threads = new List<Thread>();
        var tasks = new List<Task>();
        for (var w = 0; w < Workers; w++)
        {
            var worker = w;
            if (worker % 2 == 0)
            {
                // Sync-heavy callers on their own threads (async calls among them are blocked on, off the thread pool).
                var thread = new Thread(() => RunWorker(pool, worker, unexpected, outcomes).GetAwaiter().GetResult())
                    { IsBackground = true, Name = $"stress-{worker}" };
                threads.Add(thread);
                thread.Start();
            }
            else
            {
                tasks.Add(Task.Run(() => RunWorker(pool, worker, unexpected, outcomes)));
            }
        }

        // Finished, or stuck: no checkout for 5 s of real time means every slot is lost (or the workload deadlocked).
        var bound = Stopwatch.StartNew();
        var lastCheckouts = -1L;
        var lastProgress = Stopwatch.StartNew();
        var finished = await Poll.TryUntilAsync(() =>
        {
            var checkouts = pool.Stats.Checkouts;
            if (checkouts != lastCheckouts)
            {
                lastCheckouts = checkouts;
                lastProgress.Restart();
            }
            return (threads.All(t => !t.IsAlive) && tasks.All(t => t.IsCompleted)) || lastProgress.Elapsed > TimeSpan.FromSeconds(5);
        }, TimeSpan.FromSeconds(120));
        finished &= threads.All(t => !t.IsAlive) && tasks.All(t => t.IsCompleted);
        Volatile.Write(ref done, 1);
        driver.Join();
        if (!finished)
        {
            var stuck = pool.Stats;
            pool.Source.Dispose();   // wakes every waiter so the workers end
            Assert.Fail($"the workload stopped making progress after {bound.Elapsed.TotalSeconds:F0} s: {stuck}; outcomes: {Describe(outcomes)}");
        }
        await Task.WhenAll(tasks);

        Assert.IsEmpty(unexpected, string.Join("\n", unexpected.Take(10)));
        Assert.AreEqual(0, pool.Server.ConcurrentUseViolations, "a physical connection was used by two borrowers at once");
        Assert.IsLessThanOrEqualTo(Max, maxTotalSeen, "more connections than MaxPoolSize");
        Assert.IsLessThanOrEqualTo(Max, pool.Server.PeakOpenConnections, "more physical connections than MaxPoolSize");

        // Every borrower has returned; background resets finish on their own (the clock no longer moves).
        var settled = await Poll.TryUntilAsync(() => pool.Stats is { InUse: 0, Waiting: 0 });
        var end = pool.Stats;
        Assert.IsTrue(settled, $"slots still in use after every borrower returned: {end}; outcomes: {Describe(outcomes)}");
        Assert.AreEqual(end.Total, end.Idle + end.InUse);
        Assert.AreEqual(0, end.InUse);
        Assert.AreEqual(end.Total, pool.Server.OpenConnections, "the pool's count and the server's open connections disagree");
        Assert.IsLessThanOrEqualTo(Max, end.Total);
        Assert.IsGreaterThan(Workers * Iterations / 2, (int)end.Checkouts);
    }

    private static async Task RunWorker(TestPool pool, int worker, ConcurrentQueue<string> unexpected, ConcurrentDictionary<string, int> outcomes)
    {
        var rng = new Random(1000 + worker);
        for (var i = 0; i < Iterations; i++)
        {
            try
            {
                await RunIteration(pool, worker, rng, outcomes);
            }
            catch (Exception e)
            {
                unexpected.Enqueue($"worker {worker} iteration {i}: {e}");
            }
        }
    }

    private static async Task RunIteration(TestPool pool, int worker, Random rng, ConcurrentDictionary<string, int> outcomes)
    {
        var connection = pool.Source.CreateConnection();
        var sync = rng.Next(2) == 0;
        var cancel = !sync && rng.Next(10) == 0;
        try
        {
            if (sync)
            {
                connection.Open();
            }
            else if (cancel)
            {
                using var cts = new CancellationTokenSource();
                if (rng.Next(2) == 0)
                    cts.Cancel();
                else
                    cts.CancelAfter(TimeSpan.FromTicks(rng.Next(1, 20_000)));
                try
                {
                    await connection.OpenAsync(cts.Token);
                }
                catch (OperationCanceledException) when (cts.IsCancellationRequested)
                {
                    Count(outcomes, "open cancelled");
                    return;
                }
            }
            else
            {
                await connection.OpenAsync();
            }
        }
        catch (CovetPoolExhaustedException)
        {
            Count(outcomes, "acquire timeout");
            return;
        }

        try
        {
            // Whatever the previous borrower did, this one starts with a clean session.
            var leftOver = sync ? connection.QueryScalar("SHOW owner") : await connection.QueryScalarAsync("SHOW owner");
            if (leftOver is not DBNull)
                throw new InvalidOperationException($"session state leaked between borrowers: owner = {leftOver}");

            var op = rng.Next(100);
            if (op < 30)
            {
                var n = rng.Next(1000);
                var result = sync ? connection.QueryScalar($"SELECT {n}") : await connection.QueryScalarAsync($"SELECT {n}");
                if (!Equals(result, n))
                    throw new InvalidOperationException($"SELECT {n} returned {result}");
                Count(outcomes, "query");
            }
            else if (op < 45)
            {
                connection.Exec($"SET owner = {worker}");
                if (!Equals(connection.QueryScalar("SHOW owner"), worker.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                    throw new InvalidOperationException("a borrower lost its own session state");
                Count(outcomes, "session");
            }
            else if (op < 52)
            {
                var e = await ExpectFake(() => sync ? Task.FromResult(connection.Exec("BREAK")) : connection.ExecAsync("BREAK"));
                if (e.SqlState != FakeDbException.AdminShutdownState)
                    throw e;
                Count(outcomes, "break");
            }
            else if (op < 60)
            {
                var e = await ExpectFake(() => sync ? Task.FromResult(connection.Exec("FAIL")) : connection.ExecAsync("FAIL"));
                if (e.SqlState != FakeDbException.SyntaxErrorState)
                    throw e;
                Count(outcomes, "fail");
            }
            else if (op < 72)
            {
                var transaction = sync ? connection.BeginTransaction() : await connection.BeginTransactionAsync();
                connection.Exec($"SET owner = {worker}", transaction);
                if (rng.Next(2) == 0)
                {
                    transaction.Commit();
                    Count(outcomes, "commit");
                }
                else
                {
                    Count(outcomes, "left open");   // Close must roll it back
                }
            }
            else if (op < 85)
            {
                var sum = connection.Query<int>("SELECT * FROM numbers(4)", buffered: rng.Next(2) == 0).Sum();
                if (sum != 10)
                    throw new InvalidOperationException($"numbers(4) summed to {sum}");
                Count(outcomes, "dapper");
            }
            else
            {
                Count(outcomes, "idle borrow");
            }
        }
        finally
        {
            if (rng.Next(2) == 0)
                connection.Close();
            else
                await connection.DisposeAsync();
        }
    }

    private static async Task<FakeDbException> ExpectFake(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (FakeDbException e)
        {
            return e;
        }
        throw new InvalidOperationException("expected a FakeDbException");
    }

    private static void Count(ConcurrentDictionary<string, int> outcomes, string what) => outcomes.AddOrUpdate(what, 1, (_, n) => n + 1);

    private static string Describe(ConcurrentDictionary<string, int> outcomes) =>
        string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Key} {o.Value}"));

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
                return;
            current = seen;
        }
    }
}
