using System.Transactions;

namespace Covet.Data.Pooling;

/// <summary>
/// System.Transactions: a checkout inside a <see cref="TransactionScope"/> enlists its physical connection, every later
/// open in the same transaction gets that same connection back, and a connection closed while its transaction is still
/// running stays parked (out of the idle stack) until the transaction completes.
/// </summary>
/// <remarks>
/// Contract: the map from transaction to connection, and each connection's <see cref="PooledConnection.EnlistedIn"/>,
/// are guarded by the pool's lock (<see cref="CovetPool.Gate"/>). <c>EnlistedIn</c> is set only by the borrower, and
/// cleared under the lock by the transaction's completion, which also reads <see cref="PooledConnection.Borrowed"/>
/// under the lock: so exactly one of the borrower's return and the completion hands the connection back.
/// </remarks>
internal sealed class TransactionEnlistment(CovetPool pool)
{
    private Dictionary<Transaction, PooledConnection>? _enlisted; // created on the first enlistment

    /// <summary>The connection parked for <paramref name="transaction"/> (closed by a borrower, still enlisted), or null.</summary>
    public PooledConnection? TryTakeParked(Transaction transaction)
    {
        lock (pool.Gate)
        {
            if (_enlisted is not null && _enlisted.TryGetValue(transaction, out var connection) && !connection.Borrowed && connection.State == SlotState.InUse)
                return connection;
            return null;
        }
    }

    /// <summary>Enlists a connection being checked out; on failure it is given back (or destroyed) and the error thrown.</summary>
    public void Enlist(PooledConnection connection, Transaction transaction)
    {
        try
        {
            connection.Physical.EnlistTransaction(transaction);
        }
        catch
        {
            pool.Returns.ReturnToPool(connection, pool.Clock.Now());
            throw;
        }
        connection.NeedsReset = true;
        lock (pool.Gate)
        {
            connection.EnlistedIn = transaction;
            (_enlisted ??= []).TryAdd(transaction, connection);
        }
        transaction.TransactionCompleted += (_, _) => OnCompleted(connection, transaction);
    }

    /// <summary>
    /// The borrower gives the connection back: false when it stays parked for its still-running transaction (the
    /// completion hands it back then). Only the borrower calls this.
    /// </summary>
    public bool ReleaseBorrower(PooledConnection connection)
    {
        if (connection.EnlistedIn is null)
        {
            connection.Borrowed = false;
            return true;
        }
        lock (pool.Gate)
        {
            connection.Borrowed = false;
            return connection.EnlistedIn is null;
        }
    }

    /// <summary>The slot is being taken back by the pool: it is no longer parked for any transaction. Under the pool lock.</summary>
    public void ForgetLocked(PooledConnection connection)
    {
        if (connection.EnlistedIn is { } tx && _enlisted is not null && _enlisted.TryGetValue(tx, out var enlisted) && enlisted == connection)
            _enlisted.Remove(tx);
        connection.EnlistedIn = null;
    }

    private void OnCompleted(PooledConnection connection, Transaction transaction)
    {
        bool parked;
        lock (pool.Gate)
        {
            if (_enlisted is not null && _enlisted.TryGetValue(transaction, out var current) && current == connection)
                _enlisted.Remove(transaction);
            connection.EnlistedIn = null;
            parked = !connection.Borrowed && connection.State == SlotState.InUse;
        }
        if (parked)
            pool.Returns.ReturnToPool(connection, pool.Clock.Now());
    }
}
