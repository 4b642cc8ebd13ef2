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

    /// <inheritdoc />
    protected override DbConnection? DbConnection => _connection;

    /// <inheritdoc />
    public override IsolationLevel IsolationLevel => Inner.IsolationLevel;

    /// <inheritdoc />
    public override bool SupportsSavepoints => Inner.SupportsSavepoints;

    /// <inheritdoc />
    public override void Commit()
    {
        Run(Inner.Commit);
        Complete();
    }

    /// <inheritdoc />
    public override void Rollback()
    {
        Run(Inner.Rollback);
        Complete();
    }

    /// <inheritdoc />
    public override async Task CommitAsync(CancellationToken cancellationToken = default)
    {
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
    public override void Save(string savepointName) => Inner.Save(savepointName);

    /// <inheritdoc />
    public override void Rollback(string savepointName) => Inner.Rollback(savepointName);

    /// <inheritdoc />
    public override void Release(string savepointName) => Inner.Release(savepointName);

    /// <inheritdoc />
    public override Task SaveAsync(string savepointName, CancellationToken cancellationToken = default) => Inner.SaveAsync(savepointName, cancellationToken);

    /// <inheritdoc />
    public override Task RollbackAsync(string savepointName, CancellationToken cancellationToken = default) => Inner.RollbackAsync(savepointName, cancellationToken);

    /// <inheritdoc />
    public override Task ReleaseAsync(string savepointName, CancellationToken cancellationToken = default) => Inner.ReleaseAsync(savepointName, cancellationToken);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && !IsCompleted)
        {
            if (_connection is not null)
            {
                // Disposing an unfinished transaction rolls it back, as the providers do.
                Run(Inner.Dispose);
                Complete();
            }
            // Detached (the connection was closed): the pool owns the inner transaction and rolls it back.
        }
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
