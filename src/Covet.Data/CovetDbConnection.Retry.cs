using System.ComponentModel;
using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Transaction = System.Transactions.Transaction;
using Covet.Data.Pooling;

namespace Covet.Data;

// The command path's retry of a command the server provably never read (PostgreSQL: a FATAL that answered the queued
// reset). See README "Differences from the provider" and CovetDbCommand, which drives it.
public partial class CovetDbConnection
{
    /// <summary>
    /// What the dialect will need to prove that a failure of the command about to run came before the server read it
    /// (<see cref="Providers.ProviderDialect.CaptureBeforeCommand"/>); null when no retry could be allowed anyway: inside
    /// a transaction (a retry elsewhere would run outside it), enlisted in a System.Transactions transaction, or a
    /// dialect that can prove nothing. No I/O.
    /// </summary>
    internal object? CaptureForRetry()
    {
        if (_slot is not { } slot || CurrentTransaction is not null || slot.EnlistedIn is not null || Transaction.Current is not null)
            return null;
        return slot.Pool.Dialect.CaptureBeforeCommand(slot.Physical);
    }

    /// <summary>Whether a failed command provably never reached the server's execution, so it may run on another connection.</summary>
    internal bool NeverReadByServer(object? captured, Exception exception, CancellationToken cancellationToken) =>
        captured is not null && !cancellationToken.IsCancellationRequested && _slot is { } slot && slot.Pool.Dialect.FailedBeforeUserCommand(captured, exception);

    /// <summary>
    /// After <see cref="NeverReadByServer"/>: gives the dead physical connection back (it is destroyed) and takes another
    /// from the same pool, through the usual checkout and its validation; the logical connection stays open. When no other
    /// connection can be had, the logical connection is closed and <paramref name="failure"/> is rethrown unchanged.
    /// </summary>
    internal async ValueTask ReplaceDeadConnectionAsync(System.Runtime.ExceptionServices.ExceptionDispatchInfo failure, bool async, CancellationToken cancellationToken)
    {
        var slot = _slot!;
        var pool = slot.Pool;
        slot.Broken = true; // the server ended the session (the dialect's proof); ObserveError has normally marked it already
        _slot = null;
        pool.Return(slot, _lease, pendingRollback: null);
        try
        {
            var (next, lease) = await pool.AcquireAsync(this, async, cancellationToken).ConfigureAwait(false);
            Attach(next, lease);
        }
        catch (Exception)
        {
            OnStateChange(OpenToClosed);
            failure.Throw();
            throw; // unreachable
        }
    }
}
