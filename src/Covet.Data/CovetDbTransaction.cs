using System.Data;
using System.Data.Common;

namespace Covet.Data;

/// <summary>
/// A transaction of a <see cref="CovetDbConnection"/>: its <c>Connection</c> is the Covet connection, the work is
/// the provider's own transaction. A transaction still open when the connection is closed is rolled back before the
/// physical connection goes to anyone else.
/// </summary>
public sealed class CovetDbTransaction : DbTransaction
{
    private CovetDbConnection? _connection;

    internal CovetDbTransaction(CovetDbConnection connection, DbTransaction inner)
    {
        _connection = connection;
        Owner = connection;
        Inner = inner;
    }

    /// <summary>The provider's own transaction.</summary>
    public DbTransaction Inner { get; }

    internal CovetDbConnection Owner { get; }

    internal bool IsCompleted { get; private set; }

    /// <summary>The connection was closed with this transaction open: the pool owns (and rolls back) the provider's transaction.</summary>
    internal bool IsDetached { get; private set; }

    /// <summary>The Covet connection; null once the provider's own transaction says it has none (MySqlConnector and SQLite after completion) or the connection was closed.</summary>
    protected override DbConnection? DbConnection => _connection is null || Inner.Connection is null ? null : _connection;

    /// <summary>What the provider throws for a transaction used after its connection closed (never touching the provider's transaction, which the pool owns now).</summary>
    internal Exception ClosedConnectionError() => Owner.Dialect?.TransactionOfClosedConnection()
        ?? new InvalidOperationException("This transaction has completed; it is no longer usable: its connection was closed.");

    /// <inheritdoc />
    public override IsolationLevel IsolationLevel => Inner.IsolationLevel;

    /// <inheritdoc />
    public override bool SupportsSavepoints => Inner.SupportsSavepoints;

    /// <inheritdoc />
    public override void Commit()
    {
        if (IsDetached)
            throw ClosedConnectionError();
        Run(Inner.Commit);
        Complete();
    }

    /// <inheritdoc />
    public override void Rollback()
    {
        if (IsDetached)
            throw ClosedConnectionError();
        Run(Inner.Rollback);
        Complete();
    }

    /// <inheritdoc />
    public override async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        if (IsDetached)
            throw ClosedConnectionError();
        try
        {
            await Inner.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (CovetDbCommand.Observe(_connection, e))
        {
            throw;
        }
        Complete();
    }

    /// <inheritdoc />
    public override async Task RollbackAsync(CancellationToken cancellationToken = default)
    {
        if (IsDetached)
            throw ClosedConnectionError();
        try
        {
            await Inner.RollbackAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (CovetDbCommand.Observe(_connection, e))
        {
            throw;
        }
        Complete();
    }

    /// <inheritdoc />
    public override void Save(string savepointName) => Live().Save(savepointName);

    /// <inheritdoc />
    public override void Rollback(string savepointName) => Live().Rollback(savepointName);

    /// <inheritdoc />
    public override void Release(string savepointName) => Live().Release(savepointName);

    /// <inheritdoc />
    public override Task SaveAsync(string savepointName, CancellationToken cancellationToken = default) => Live().SaveAsync(savepointName, cancellationToken);

    /// <inheritdoc />
    public override Task RollbackAsync(string savepointName, CancellationToken cancellationToken = default) => Live().RollbackAsync(savepointName, cancellationToken);

    /// <inheritdoc />
    public override Task ReleaseAsync(string savepointName, CancellationToken cancellationToken = default) => Live().ReleaseAsync(savepointName, cancellationToken);

    private DbTransaction Live() => IsDetached ? throw ClosedConnectionError() : Inner;

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && _connection is not null)
        {
            // Disposing an unfinished transaction rolls it back, as the providers do; a finished one is disposed too, so the
            // provider's transaction answers afterwards as its own would (Npgsql: ObjectDisposedException).
            Run(Inner.Dispose);
            Complete();
        }
        // Detached (the connection was closed): the pool owns the inner transaction and rolls it back.
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The connection was closed with this transaction open; the pool rolls back <see cref="Inner"/>.</summary>
    internal void Detach()
    {
        _connection = null;
        IsCompleted = true;
        IsDetached = true;
    }

    private void Complete() => IsCompleted = true;

    private void Run(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (CovetDbCommand.Observe(_connection, e))
        {
            throw;
        }
    }
}
