using System.Data.Common;
using System.Runtime.CompilerServices;

namespace Covet.Data.Providers;

/// <summary>
/// Timeouts on the pool's <see cref="TimeProvider"/> (so fake clocks in tests drive them, as they drive every other time
/// in the pool), and the bounded wait for driver calls that do not honour cancellation.
/// </summary>
/// <remarks>
/// Drivers honour cancellation unevenly once a TCP connection exists but the server never answers (a frozen server, or
/// a load balancer in front of a dead one): Npgsql's open waits out its own connect timeout and a cancelled query waits
/// for a cancel request that hangs too; MySqlConnector's ping ignores its token. So every driver call on the pool's
/// behalf is awaited with <see cref="WithinAsync{T}"/>: past the timeout the caller moves on, and the physical connection
/// is <em>abandoned</em>: left to finish on its own and disposed only then (disposing a busy Npgsql connection can block
/// for a minute). <see cref="DisposeSafely(DbConnection)"/> honours that.
/// </remarks>
internal sealed class Deadline : IDisposable
{
    private static readonly ConditionalWeakTable<DbConnection, Task> Abandoned = new();

    private readonly CancellationTokenSource _timeout;
    private readonly CancellationTokenSource? _linked;

    public Deadline(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        _timeout = timeout == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, time);
        _linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token, cancellationToken) : null;
    }

    public CancellationToken Token => (_linked ?? _timeout).Token;

    /// <summary>True when the timeout (not the caller) fired.</summary>
    public bool TimedOut => _timeout.IsCancellationRequested;

    public void Dispose()
    {
        _linked?.Dispose();
        _timeout.Dispose();
    }

    /// <summary>
    /// Awaits a driver operation on <paramref name="connection"/> for at most <paramref name="timeout"/> (pool clock) or
    /// until the caller cancels. If it is still running then, the connection is abandoned (see the class remarks) and a
    /// <see cref="TimeoutException"/> (timeout) or <see cref="OperationCanceledException"/> (caller) is thrown. When the
    /// timeout fired and <paramref name="sever"/> is given, the connection's socket is cut as well
    /// (<see cref="ProviderDialect.Sever"/>), so the abandoned call ends at once: for the pool's own work on an open
    /// connection (ping, reset, rollback), which the pool destroys after a timeout anyway.
    /// </summary>
    public static async Task<T> WithinAsync<T>(Task<T> operation, DbConnection connection, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken,
        ProviderDialect? sever = null)
    {
        try
        {
            return await operation.WaitAsync(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException && !operation.IsCompleted)
        {
            Abandon(connection, operation);
            if (e is TimeoutException)
                sever?.Sever(connection); // after Abandon: the call's end (now) is what lets DisposeSafely close the connection
            throw;
        }
    }

    /// <inheritdoc cref="WithinAsync{T}"/>
    public static Task WithinAsync(Task operation, DbConnection connection, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken,
        ProviderDialect? sever = null) =>
        WithinAsync(operation.ContinueWith(static t => { t.GetAwaiter().GetResult(); return true; }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default), connection, timeout, time, cancellationToken, sever);

    private static void Abandon(DbConnection connection, Task operation)
    {
        Abandoned.AddOrUpdate(connection, operation);
        // Observe the operation's eventual failure so it is never reported as unobserved.
        _ = operation.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Disposes a physical connection now, or, if a driver call on it was abandoned and still runs, once it ends.</summary>
    public static void DisposeSafely(DbConnection connection) => DisposeSafely(connection, null, TimeSpan.Zero, TimeProvider.System);

    /// <summary>
    /// <see cref="DisposeSafely(DbConnection)"/>, then <paramref name="afterwards"/> once the connection is really let go (the
    /// pool frees its slot there, so a connection the server still counts never has its slot taken by another). If an
    /// abandoned driver call is still running <paramref name="atMost"/> later (a driver that ignores cancellation on a
    /// black-holed network), <paramref name="afterwards"/> runs then anyway: a hung driver must not shrink a pool for good.
    /// <paramref name="time"/> measures that: real time for a real driver (a pool's fake clock may race ahead of a fake
    /// driver's completion, which would free a slot whose connection is still open).
    /// </summary>
    public static void DisposeSafely(DbConnection connection, Action? afterwards, TimeSpan atMost, TimeProvider time)
    {
        if (Abandoned.TryGetValue(connection, out var pending) && !pending.IsCompleted)
        {
            var once = afterwards is null ? null : new RunOnce(afterwards);
            pending.ContinueWith(static (_, state) =>
            {
                var (c, then) = ((DbConnection, RunOnce?))state!;
                DisposeQuietly(c);
                then?.Run();
            }, (connection, once), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            if (once is not null && atMost != Timeout.InfiniteTimeSpan)
                _ = Task.Delay(atMost, time).ContinueWith(static (_, o) => ((RunOnce)o!).Run(), once, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return;
        }
        DisposeQuietly(connection);
        afterwards?.Invoke();
    }

    private sealed class RunOnce(Action action)
    {
        private int _ran;

        public void Run()
        {
            if (Interlocked.Exchange(ref _ran, 1) == 0)
                action();
        }
    }

    private static void DisposeQuietly(DbConnection connection)
    {
        try
        {
            connection.Dispose();
        }
        catch (Exception)
        {
            // Closing a dead connection may throw; it is gone either way.
        }
    }
}
