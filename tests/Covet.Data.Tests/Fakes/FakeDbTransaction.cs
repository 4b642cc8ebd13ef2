using System.Data;
using System.Data.Common;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// A local transaction of a <see cref="FakeDbConnection"/>. Begin/Commit/Rollback execute
/// "BEGIN"/"COMMIT"/"ROLLBACK" on the connection (logged, subject to kills, latency and the
/// concurrency check). Disposing an active transaction rolls it back, never throwing.
/// </summary>
public sealed class FakeDbTransaction : DbTransaction
{
    private readonly FakeDbConnection _connection;
    private readonly object _sync = new();
    private bool _completed;
    private bool _committed;

    internal FakeDbTransaction(FakeDbConnection connection, IsolationLevel isolationLevel)
    {
        _connection = connection;
        IsolationLevel = isolationLevel == IsolationLevel.Unspecified ? IsolationLevel.ReadCommitted : isolationLevel;
    }

    public override IsolationLevel IsolationLevel { get; }

    /// <summary>The owning connection (even after completion, unlike <see cref="DbConnection"/>).</summary>
    public FakeDbConnection FakeConnection => _connection;

    /// <summary>True once committed, rolled back, or ended by the connection closing.</summary>
    public bool IsCompleted { get { lock (_sync) { return _completed; } } }

    public bool IsCommitted { get { lock (_sync) { return _completed && _committed; } } }

    public bool IsRolledBack { get { lock (_sync) { return _completed && !_committed; } } }

    /// <summary>The connection while active; null once completed (like SqlClient).</summary>
    protected override DbConnection? DbConnection => IsCompleted ? null : _connection;

    public override void Commit() => EndAsync("COMMIT", commit: true, async: false, CancellationToken.None).GetAwaiter().GetResult();

    public override void Rollback() => EndAsync("ROLLBACK", commit: false, async: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task CommitAsync(CancellationToken cancellationToken = default) =>
        EndAsync("COMMIT", commit: true, async: true, cancellationToken).AsTask();

    public override Task RollbackAsync(CancellationToken cancellationToken = default) =>
        EndAsync("ROLLBACK", commit: false, async: true, cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !IsCompleted)
        {
            if (_connection.State == ConnectionState.Open && ReferenceEquals(_connection.CurrentTransaction, this))
            {
                try
                {
                    Rollback();
                }
                catch (DbException)
                {
                    // The connection died; the server rolled the transaction back anyway.
                }
            }

            MarkCompleted(committed: false);
            _connection.ClearTransaction(this);
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!IsCompleted && _connection.State == ConnectionState.Open && ReferenceEquals(_connection.CurrentTransaction, this))
        {
            try
            {
                await RollbackAsync().ConfigureAwait(false);
            }
            catch (DbException)
            {
                // The connection died; the server rolled the transaction back anyway.
            }
        }

        Dispose();
    }

    internal void MarkCompleted(bool committed)
    {
        lock (_sync)
        {
            if (!_completed)
            {
                _completed = true;
                _committed = committed;
            }
        }
    }

    private async ValueTask EndAsync(string commandText, bool commit, bool async, CancellationToken cancellationToken)
    {
        if (IsCompleted || !ReferenceEquals(_connection.CurrentTransaction, this))
        {
            throw new InvalidOperationException("fake: this transaction has completed; it is no longer usable.");
        }

        try
        {
            await _connection.ExecuteAsync(commandText, Array.Empty<FakeDbParameter>(), commandTimeoutSeconds: 30, async, cancellationToken)
                .ConfigureAwait(false);
            MarkCompleted(commit);
        }
        finally
        {
            // Whether the command succeeded or the connection died, the transaction is over.
            MarkCompleted(committed: false);
            _connection.ClearTransaction(this);
        }
    }
}
