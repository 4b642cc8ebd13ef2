using System.Data.Common;
using System.Transactions;
using Covet.Data.Diagnostics;
using Covet.Data.Providers;

namespace Covet.Data.Pooling;

/// <summary>
/// The life of physical connections: open one into a reserved slot (through the circuit breaker, bounded by the acquire
/// deadline), adopt it as a slot of the pool with its lifetime (minus a random spread), warm the pool up to its minimum
/// in the background, and close one — freeing its slot only once the driver has really let the connection go.
/// </summary>
/// <remarks>
/// <para>Contract: a caller of <see cref="CreateAsync"/> has already counted the slot in <see cref="CovetPool.Total"/>
/// (under the pool lock); on failure the slot is given back before or with the error, so a failed open never leaks a
/// slot. <see cref="Close"/> is called by whoever won the right to close the connection (its state moved to Closed under
/// the pool lock). No member takes the pool lock across I/O.</para>
/// <para>The hard cap: a driver call that did not finish in time (an open whose caller cancelled, a ping or reset past
/// its timeout) is abandoned, not awaited, and the connection is disposed only when that call ends
/// (<see cref="Deadline.DisposeSafely(System.Data.Common.DbConnection)"/>). Its slot is freed then, not before: until the driver has closed it, the
/// server still counts the connection, and a slot freed early would let the pool open one more than
/// <see cref="CovetPoolOptions.MaxPoolSize"/>. One exception bounds it: a driver call that ignores cancellation and is
/// still running <see cref="CovetPoolOptions.ValidationTimeout"/> after it was abandoned (a black-holed network, where
/// the server sees nothing of it either) frees its slot then, so a hung driver cannot shrink the pool for good.</para>
/// </remarks>
internal sealed class PhysicalConnections(CovetPool pool, DbProviderFactory factory, DbDataSource? physicalSource)
{
    /// <summary>
    /// The driver's own connect timeout is capped at the acquire timeout (whole seconds), so the two can fire together:
    /// a connect failing this close to the deadline is reported as the acquire timing out (the driver's error inside).
    /// </summary>
    private static readonly TimeSpan DeadlineTolerance = TimeSpan.FromMilliseconds(50);

    private int _nextId;
    private int _warming;        // Interlocked: slots being opened in the background (warm-up, growth): neither idle nor demand

    private int _closing;        // Interlocked: slots whose connection is being closed (an abandoned driver call may hold one a while)

    /// <summary>
    /// How long (real time) an abandoned driver call may keep its slot: the validation timeout for a real driver. On a
    /// fake clock (tests) there is no hung driver, only fake ones waiting for the fake clock, so the slot is held until
    /// the call ends (the strict cap).
    /// </summary>
    private TimeSpan HungDriverBound => pool.Clock.IsCoarse ? pool.Options.ValidationTimeout : Timeout.InfiniteTimeSpan;

    /// <summary>Slots being opened in the background.</summary>
    public int Warming => Volatile.Read(ref _warming);

    /// <summary>Slots still held by connections being closed: neither idle nor demand.</summary>
    public int Closing => Volatile.Read(ref _closing);

    /// <summary>Opens a physical connection into a slot already counted in <see cref="CovetPool.Total"/>; gives the slot back on failure.</summary>
    public async ValueTask<PooledConnection> CreateAsync(bool async, long acquireStart, CancellationToken cancellationToken)
    {
        DbConnection? physical = null;
        Task? open = null;
        var heldHalfOpenTrial = false;
        var started = 0L;
        try
        {
            heldHalfOpenTrial = pool.Breaker.ThrowIfOpen();
            started = pool.Clock.Precise();
            // The driver must not enlist on open: Covet enlists at checkout, explicitly (a data source's connections keep
            // the driver's Enlist=true, which no connection string of ours can turn off).
            using var noAmbientTransaction = Transaction.Current is null ? null : new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled);
            physical = await NewPhysicalAsync(cancellationToken).ConfigureAwait(false);
            if (async)
            {
                // The caller's acquire deadline bounds the open too, so a black-holed server cannot hold it past its timeout.
                // The caller's token only ends the caller's wait: an open it abandons finishes for the pool (see FinishForPool).
                var remaining = pool.Acquisition.Remaining(acquireStart);
                using var deadline = new Deadline(remaining, pool.Clock.Time, CancellationToken.None);
                try
                {
                    // Bounded here too: Npgsql's open ignores the token once TCP is up and waits out its own timeout.
                    open = physical.OpenAsync(deadline.Token);
                    await Deadline.WithinAsync(open, physical, remaining, pool.Clock.Time, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when ((e is TimeoutException || deadline.TimedOut || pool.Acquisition.Remaining(acquireStart) <= DeadlineTolerance) && !cancellationToken.IsCancellationRequested)
                {
                    throw pool.ExhaustedException("opening a new physical connection did not finish within the acquire timeout", e);
                }
            }
            else
            {
                try
                {
                    physical.Open(); // bounded by the driver's connect timeout, which the dialect capped at the acquire timeout
                }
                catch (Exception e) when (pool.Acquisition.Remaining(acquireStart) <= DeadlineTolerance)
                {
                    throw pool.ExhaustedException("opening a new physical connection did not finish within the acquire timeout", e);
                }
            }
            return Adopt(physical, started);
        }
        catch (Exception e)
        {
            if (e is not CovetCircuitOpenException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // Cannot connect, authentication, shutdown, or a connect that never answered: all count for the breaker.
                Interlocked.Increment(ref pool.Counters.ConnectionFailures);
                CovetLog.ConnectionFailed(pool.Logger, pool.Name, e);
                pool.Breaker.OnFailure(e);
            }
            else if (heldHalfOpenTrial)
            {
                pool.Breaker.OnFailure(e);
            }
            if (open is { IsCompleted: false } && cancellationToken.IsCancellationRequested)
                FinishForPool(physical!, open, started); // the caller gave up; the connection may still be good for the next one
            else if (physical is not null)
                DisposeAndReleaseSlot(physical); // an abandoned open keeps its slot until the driver lets go
            else
                pool.ReleaseSlot();
            throw;
        }
    }

    /// <summary>
    /// An open whose caller cancelled its wait goes on for the pool (as HikariCP's creator does): a connection it makes is
    /// adopted and made available to the next borrower, and only a failed one is disposed, its slot freed then. So a
    /// cancelled caller costs neither a half-made server connection nor the churn of making it again, and the slot stays
    /// counted while the server may see the connection.
    /// </summary>
    private void FinishForPool(DbConnection physical, Task open, long started) =>
        open.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully && physical.State == System.Data.ConnectionState.Open && !pool.IsDisposed)
            {
                pool.MakeAvailable(Adopt(physical, started));
                return;
            }
            _ = t.Exception; // observed: nobody else awaits it
            Deadline.DisposeSafely(physical);
            pool.ReleaseSlot();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// The circuit probe's open: bypasses the breaker's open state (probing is how it learns the database is back), into a
    /// slot the caller reserved. True: a new connection was made available. False: it failed (reported to the breaker).
    /// <paramref name="slotSettled"/> runs once the slot is the new connection's or has been freed (a failed probe's
    /// abandoned open may hold it a while), so probes never pile up slots.
    /// </summary>
    public async Task<bool> TryOpenForProbeAsync(Action slotSettled)
    {
        var started = pool.Clock.Precise();
        var physical = await NewPhysicalAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            var timeout = pool.Options.ValidationTimeout;
            using var deadline = new Deadline(timeout, pool.Clock.Time, CancellationToken.None);
            await Deadline.WithinAsync(physical.OpenAsync(deadline.Token), physical, timeout, pool.Clock.Time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            pool.Breaker.OnFailure(e);
            Deadline.DisposeSafely(physical, () => { pool.ReleaseSlot(); slotSettled(); }, HungDriverBound, TimeProvider.System);
            return false;
        }
        slotSettled();
        pool.MakeAvailable(Adopt(physical, started));
        return true;
    }

    /// <summary>Turns a just-opened physical connection into a slot of this pool (its slot was already counted).</summary>
    private PooledConnection Adopt(DbConnection physical, long started)
    {
        var elapsed = pool.Clock.Time.GetElapsedTime(started);
        pool.Statistics.RecordCreate(elapsed);
        var now = pool.Clock.Now();
        var connection = new PooledConnection(pool, physical, now, ExpiryFrom(now, pool.Options.MaxLifetime), Interlocked.Increment(ref _nextId))
        {
            VerifiedEpoch = pool.Validation.Epoch,
        };
        AddSlot(connection);
        Interlocked.Increment(ref pool.Counters.ConnectionsCreated);
        pool.Breaker.OnSuccess();
        CovetLog.ConnectionCreated(pool.Logger, pool.Name, connection.Id, elapsed.TotalMilliseconds);
        return connection;
    }

    /// <summary>A new, unopened physical connection: from the physical data source when one was given, else from the factory.</summary>
    private async ValueTask<DbConnection> NewPhysicalAsync(CancellationToken cancellationToken)
    {
        if (physicalSource is not null)
            return physicalSource.CreateConnection();
        var physical = factory.CreateConnection()!;
        var physicalConnectionString = pool.PhysicalConnectionString; // read once: a reconfiguration may replace it
        if (pool.Options.PasswordProvider is not { } provider)
        {
            physical.ConnectionString = physicalConnectionString;
            return physical;
        }
        var password = await provider(cancellationToken).ConfigureAwait(false);
        var builder = factory.CreateConnectionStringBuilder() ?? new DbConnectionStringBuilder();
        builder.ConnectionString = physicalConnectionString;
        builder["Password"] = password;
        physical.ConnectionString = builder.ConnectionString;
        return physical;
    }

    /// <summary>When a connection made at <paramref name="now"/> retires; long.MaxValue when lifetime is off.</summary>
    public long ExpiryFrom(long now, TimeSpan maxLifetime)
    {
        if (maxLifetime <= TimeSpan.Zero || maxLifetime == Timeout.InfiniteTimeSpan)
            return long.MaxValue;
        // Up to 2.5 % earlier, at random, so connections made together do not all expire together (HikariCP does the same).
        var spread = maxLifetime * (Random.Shared.NextDouble() * 0.025);
        return now + pool.Clock.Units(maxLifetime - spread);
    }

    /// <summary>Closes a connection whose state the caller moved to Closed, and frees its slot once the driver let it go.</summary>
    public void Close(PooledConnection connection, string reason)
    {
        Interlocked.Increment(ref pool.Counters.ConnectionsDestroyed);
        CovetLog.ConnectionDestroyed(pool.Logger, pool.Name, connection.Id, reason);
        DisposeAndReleaseSlot(connection.Physical);
    }

    /// <summary>
    /// Disposes a physical connection and frees its slot once the driver let it go; at most <see cref="CovetPoolOptions.ValidationTimeout"/>
    /// after an abandoned driver call still runs (see the class remarks).
    /// </summary>
    private void DisposeAndReleaseSlot(DbConnection physical)
    {
        Interlocked.Increment(ref _closing);
        Deadline.DisposeSafely(physical, () =>
        {
            Interlocked.Decrement(ref _closing);
            pool.ReleaseSlot();
        }, HungDriverBound, TimeProvider.System); // a hung driver is a real-time matter (see Deadline.DisposeSafely)
    }

    /// <summary>Reserves a slot for a background open (the circuit probe). False when the pool is full or disposed.</summary>
    public bool TryReserveSlot()
    {
        lock (pool.Gate)
        {
            if (pool.Disposed || pool.State != CovetPoolState.Running || pool.Total >= pool.Options.MaxPoolSize)
                return false; // paused: the probe opens nothing either
            pool.Total++;
            return true;
        }
    }

    /// <summary>Opens connections in the background up to the minimum, reserving their slots now so concurrent calls do not over-create. Not while paused.</summary>
    public void WarmUp()
    {
        int missing;
        lock (pool.Gate)
        {
            if (pool.Disposed || pool.State != CovetPoolState.Running)
                return;
            missing = Math.Max(0, pool.Options.MinPoolSize - pool.Total);
            pool.Total += missing;
        }
        if (missing > 0)
            WarmInBackground(missing);
    }

    /// <summary>A newly opened connection joins the pool's slots (in use by whoever opened it).</summary>
    private void AddSlot(PooledConnection connection)
    {
        lock (pool.Gate)
        {
            connection.Generation = pool.Generation;
            connection.State = SlotState.InUse;
            pool.Slots.Add(connection);
        }
    }

    /// <summary>Opens <paramref name="count"/> connections in the background into slots the caller has already reserved.</summary>
    public void WarmInBackground(int count)
    {
        Interlocked.Add(ref _warming, count);
        for (var i = 0; i < count; i++)
            ThreadPool.UnsafeQueueUserWorkItem(static self => _ = self.WarmOneAsync(), this, preferLocal: false);
    }

    // Queued with UnsafeQueueUserWorkItem, so it runs without the caller's execution context: a warm-up started by a
    // caller inside a TransactionScope must not see its transaction (a driver that enlists on open, such as a pool over
    // an Npgsql data source, would put an idle connection into someone else's transaction), its AsyncLocals or its Activity.
    private async Task WarmOneAsync()
    {
        try
        {
            var connection = await CreateAsync(async: true, pool.Clock.Precise(), CancellationToken.None).ConfigureAwait(false);
            pool.MakeAvailable(connection);
        }
        catch (Exception)
        {
            // Logged and counted by CreateAsync; the slot was released. The next housekeeping visit tries again.
        }
        finally
        {
            Interlocked.Decrement(ref _warming);
        }
    }
}
