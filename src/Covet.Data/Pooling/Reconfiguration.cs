using Covet.Data.Diagnostics;

namespace Covet.Data.Pooling;

/// <summary>
/// New settings for a running pool, without dropping a connection (HikariCP's config MXBean, pgbouncer's RELOAD): the
/// options in force are replaced whole, and each part that keeps a value derived from them is told.
/// </summary>
/// <remarks>
/// <para>What a change does. Maximum lowered: surplus idle connections close now, borrowed ones as they come back, and
/// no freed slot goes to a waiter until the pool is within the new maximum (<see cref="CovetPool.MakeAvailable"/>,
/// <see cref="CovetPool.ReleaseSlot"/>). Maximum raised: the queued waiters get the new room at once (free slots they
/// open connections in), oldest first. Minimum raised: warm-up to it in the background; lowered: idle eviction lets the
/// extra go by the idle timeout. Max lifetime: every connection gets a new expiry from its creation time, with the
/// spread (one already past it retires when next idle). Acquire timeout: acquires that start afterwards (a waiter keeps
/// the deadline it queued with) and the driver's connect-timeout cap of new physical connections. Everything read per use
/// (idle timeout, health checks, leak thresholds and stack-trace mode, sizing, validation timeout, health query, password
/// provider, maintenance interval) applies from its next use; the housekeeping is woken so a parked pool re-plans.
/// What cannot change live is listed, with the reason, in <see cref="OptionChanges.NotLive"/>.</para>
/// <para>Contract: the new options are validated whole before anything changes, so an invalid set leaves the pool as it
/// was. Reconfigurations are serialised by their own lock (never the pool lock across the parts' updates); the options
/// reference is swapped under the pool lock together with the shrink's and the waiters' decisions, so a checkout sees
/// either the old or the new maximum, never a mix with a stale count. Readers elsewhere take <see cref="CovetPool.Options"/>
/// once per decision and get one consistent set, because an installed options object is never changed in place.</para>
/// </remarks>
internal sealed class Reconfiguration(CovetPool pool, bool hasPhysicalSource)
{
    private readonly Lock _serial = new(); // one reconfiguration at a time, so the parts see changes in order

    /// <summary>The values derived from the options that the hot paths read as fields.</summary>
    public static void Derive(CovetPool pool, CovetPoolOptions options)
    {
        pool.LeakDetection = options.LeakDetectionThreshold > TimeSpan.Zero;
        // Conformance: Covet's DefaultCommandTimeout only when the user set it; otherwise the provider's own.
        pool.CommandTimeoutSeconds = options.DefaultCommandTimeout is { } commandTimeout && !pool.Dialect.ConnectionStringSetsCommandTimeout(pool.ProviderConnectionString)
            ? (int)Math.Ceiling(commandTimeout.TotalSeconds)
            : null;
    }

    /// <summary>
    /// A validated copy of <paramref name="requested"/> that this pool would accept (used alone to check a set of pools before
    /// changing any of them).
    /// </summary>
    /// <exception cref="CovetConfigurationException">A setting is out of range, or one that cannot change live differs.</exception>
    public CovetPoolOptions Check(CovetPoolOptions requested)
    {
        var next = ValidatedCopy(requested);
        Changes(pool.Options, next);
        return next;
    }

    private static CovetPoolOptions ValidatedCopy(CovetPoolOptions requested)
    {
        ArgumentNullException.ThrowIfNull(requested);
        var next = requested.Clone();
        next.Validate();
        return next;
    }

    private List<(string Name, string Old, string New)> Changes(CovetPoolOptions current, CovetPoolOptions next)
    {
        var changes = OptionChanges.Between(current, next);
        OptionChanges.ThrowIfNotLive(changes);
        if (hasPhysicalSource && next.PasswordProvider is not null)
            throw new CovetConfigurationException(nameof(CovetPoolOptions.PasswordProvider), "PasswordProvider cannot be used with a provider data source: configure authentication on the data source.");
        return changes;
    }

    /// <summary>Applies <paramref name="requested"/> to the running pool (a copy of it: later changes to the object have no effect).</summary>
    /// <returns>The settings that changed, with old and new values.</returns>
    /// <exception cref="CovetConfigurationException">A setting is out of range, or one that cannot change live differs; nothing was applied.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public string Apply(CovetPoolOptions requested)
    {
        var next = ValidatedCopy(requested); // the live-change check runs once, under the lock, against the options then in force
        lock (_serial)
        {
            ObjectDisposedException.ThrowIf(pool.IsDisposed, pool);
            var current = pool.Options;
            var changes = Changes(current, next);
            if (changes.Count == 0)
                return OptionChanges.Describe(changes);

            // Computed before the swap: a connection opened from now on gets the new connect-timeout cap.
            var physicalConnectionString = next.AcquireTimeout == current.AcquireTimeout
                ? pool.PhysicalConnectionString
                : pool.Dialect.PhysicalConnectionString(pool.InnerFactory, pool.ProviderConnectionString, next);

            List<PooledConnection> surplus;
            List<(Waiter Waiter, PooledConnection? Connection)> handovers;
            lock (pool.Gate)
            {
                ObjectDisposedException.ThrowIf(pool.Disposed, pool);
                pool.Options = next;
                pool.PhysicalConnectionString = physicalConnectionString;
                // Surplus idle connections above a lowered maximum go now, coldest first; the rest of the surplus is
                // borrowed and goes as it comes back. Their slots are freed by the close, after the lock. Counted in live
                // slots (Slots), not Total: connections already being closed are going anyway.
                var excess = pool.Slots.Count - next.MaxPoolSize;
                surplus = excess > 0 ? pool.Idle.TakeWhere(ref excess, static (PooledConnection _, ref int n) => n-- > 0) : [];
                foreach (var c in surplus)
                    pool.MarkClosedLocked(c);
                // A raised maximum is room for the queued waiters, served oldest first before any newcomer.
                handovers = next.MaxPoolSize > current.MaxPoolSize ? pool.Acquisition.MatchWaitersLocked() : [];
            }

            Derive(pool, next);
            pool.Acquisition.OnAcquireTimeoutChanged(next.AcquireTimeout);
            pool.Waiters.OnAcquireTimeoutChanged(next.AcquireTimeout);
            pool.Validation.Configure(next);
            pool.Breaker.Configure(next.CircuitBreakerFailureThreshold, next.CircuitBreakerBreakDuration);
            pool.Sizer.OnResized(next);
            if (next.MaxLifetime != current.MaxLifetime)
            {
                foreach (var c in pool.SnapshotAll())
                    c.ExpiresAt = pool.Connections.ExpiryFrom(c.CreatedAt, next.MaxLifetime);
            }

            foreach (var c in surplus)
                pool.Connections.Close(c, "pool shrunk");
            pool.Acquisition.HandOver(handovers);
            if (next.MinPoolSize > current.MinPoolSize)
                pool.Connections.WarmUp();
            pool.Wake(); // a parked pool plans again with the new timeouts and sizes

            var description = OptionChanges.Describe(changes);
            CovetLog.PoolReconfigured(pool.Logger, pool.Name, description);
            return description;
        }
    }
}
