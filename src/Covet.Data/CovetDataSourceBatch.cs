using System.Data;
using System.Data.Common;

namespace Covet.Data;

/// <summary>
/// A batch of a <see cref="CovetDataSource"/> that owns its connection: each execution opens it (borrows from the pool),
/// runs, and closes it again (a reader closes it when the reader closes). Like the data-source batches of the providers
/// and of <see cref="DbDataSource"/> itself, its <c>Connection</c> and <c>Transaction</c> are not available, nor
/// <c>Prepare</c>; unlike the base class's batch, <c>CreateBatchCommand</c> works (the base throws NotImplementedException).
/// </summary>
internal sealed class CovetDataSourceBatch : DbBatch
{
    private readonly DbConnection _connection;
    private readonly DbBatch _batch;

    public CovetDataSourceBatch(DbConnection connection)
    {
        _connection = connection;
        _batch = connection.CreateBatch();
    }

    protected override DbBatchCommandCollection DbBatchCommands => _batch.BatchCommands;

    public override int Timeout { get => _batch.Timeout; set => _batch.Timeout = value; }

    protected override DbConnection? DbConnection
    {
        get => throw NotOnDataSource();
        set => throw NotOnDataSource();
    }

    protected override DbTransaction? DbTransaction
    {
        get => throw NotOnDataSource();
        set => throw NotOnDataSource();
    }

    protected override DbBatchCommand CreateDbBatchCommand() => _batch.CreateBatchCommand();

    public override void Cancel() => _batch.Cancel();

    public override void Prepare() => throw NotOnDataSource();

    public override Task PrepareAsync(CancellationToken cancellationToken = default) => Task.FromException(NotOnDataSource());

    public override int ExecuteNonQuery()
    {
        _connection.Open();
        try { return _batch.ExecuteNonQuery(); }
        finally { _connection.Close(); }
    }

    public override object? ExecuteScalar()
    {
        _connection.Open();
        try { return _batch.ExecuteScalar(); }
        finally { _connection.Close(); }
    }

    public override async Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken = default)
    {
        await _connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        try { return await _batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false); }
        finally { await _connection.CloseAsync().ConfigureAwait(false); }
    }

    public override async Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken = default)
    {
        await _connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        try { return await _batch.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false); }
        finally { await _connection.CloseAsync().ConfigureAwait(false); }
    }

    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        _connection.Open();
        try
        {
            return _batch.ExecuteReader(behavior | CommandBehavior.CloseConnection);
        }
        catch
        {
            _connection.Close();
            throw;
        }
    }

    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        await _connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await _batch.ExecuteReaderAsync(behavior | CommandBehavior.CloseConnection, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await _connection.CloseAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override void Dispose()
    {
        _batch.Dispose();
        _connection.Dispose();
    }

    public override async ValueTask DisposeAsync()
    {
        await _batch.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    private static NotSupportedException NotOnDataSource() =>
        new("Connection, Transaction and Prepare are not available on a batch created by a data source: it owns its connection.");
}
