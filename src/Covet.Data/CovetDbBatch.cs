using System.Data;
using System.Data.Common;

namespace Covet.Data;

/// <summary>A batch of a <see cref="CovetDbConnection"/>, wrapping the provider's own <see cref="DbBatch"/> (its batch commands and parameters are the provider's).</summary>
public sealed class CovetDbBatch : DbBatch
{
    private readonly DbBatch _inner;
    private DbConnection? _connection;
    private DbTransaction? _transaction;

    internal CovetDbBatch(CovetDbConnection? connection, DbBatch inner, int? defaultCommandTimeout)
    {
        _inner = inner;
        _connection = connection;
        if (defaultCommandTimeout is { } timeout)
            _inner.Timeout = timeout;
    }

    /// <summary>The provider's own batch.</summary>
    public DbBatch InnerBatch => _inner;

    /// <inheritdoc />
    protected override DbBatchCommandCollection DbBatchCommands => _inner.BatchCommands;

    /// <inheritdoc />
    public override int Timeout { get => _inner.Timeout; set => _inner.Timeout = value; }

    /// <inheritdoc />
    protected override DbConnection? DbConnection { get => _connection; set => _connection = value; }

    /// <inheritdoc />
    protected override DbTransaction? DbTransaction { get => _transaction; set => _transaction = value; }

    /// <inheritdoc />
    protected override DbBatchCommand CreateDbBatchCommand() => _inner.CreateBatchCommand();

    /// <inheritdoc />
    public override void Cancel() => _inner.Cancel();

    /// <inheritdoc />
    public override void Prepare() { Bind(); _inner.Prepare(); }

    /// <inheritdoc />
    public override Task PrepareAsync(CancellationToken cancellationToken = default) { Bind(); return _inner.PrepareAsync(cancellationToken); }

    /// <inheritdoc />
    public override int ExecuteNonQuery()
    {
        var connection = Bind();
        try { return _inner.ExecuteNonQuery(); }
        catch (Exception e) when (CovetDbCommand.Observe(connection, e)) { throw; }
    }

    /// <inheritdoc />
    public override async Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken = default)
    {
        var connection = Bind();
        try { return await _inner.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (CovetDbCommand.Observe(connection, e)) { throw; }
    }

    /// <inheritdoc />
    public override object? ExecuteScalar()
    {
        var connection = Bind();
        try { return _inner.ExecuteScalar(); }
        catch (Exception e) when (CovetDbCommand.Observe(connection, e)) { throw; }
    }

    /// <inheritdoc />
    public override async Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken = default)
    {
        var connection = Bind();
        try { return await _inner.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (CovetDbCommand.Observe(connection, e)) { throw; }
    }

    /// <inheritdoc />
    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        var connection = Bind();
        DbDataReader reader;
        try { reader = _inner.ExecuteReader(behavior & ~CommandBehavior.CloseConnection); }
        catch (Exception e) when (CovetDbCommand.Observe(connection, e)) { throw; }
        connection?.Track(reader);
        return CovetDbCommand.WrapIfClosing(reader, behavior, connection);
    }

    /// <inheritdoc />
    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        var connection = Bind();
        DbDataReader reader;
        try { reader = await _inner.ExecuteReaderAsync(behavior & ~CommandBehavior.CloseConnection, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (CovetDbCommand.Observe(connection, e)) { throw; }
        connection?.Track(reader);
        return CovetDbCommand.WrapIfClosing(reader, behavior, connection);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _inner.Dispose();
        base.Dispose();
    }

    private CovetDbConnection? Bind()
    {
        if (_connection is not CovetDbConnection covet)
        {
            _inner.Connection = _connection;
            _inner.Transaction = _transaction is CovetDbTransaction ct ? ct.Inner : _transaction;
            return null;
        }
        _inner.Connection = covet.PhysicalForExecution("");
        foreach (DbBatchCommand command in _inner.BatchCommands)
            covet.PhysicalForExecution(command.CommandText);
        _inner.Transaction = CovetDbCommand.InnerTransaction(_transaction); // as given: the provider applies its own rule
        return covet;
    }
}
