using System.ComponentModel;
using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;

namespace Covet.Data;

/// <summary>
/// A command bound to a <see cref="CovetDbConnection"/>. It wraps the provider's own command: parameters are the
/// provider's objects, the reader is the provider's reader, and provider exceptions propagate unchanged. The inner command
/// is bound to the physical connection (and transaction) at execute time, so it may be created before the connection opens.
/// </summary>
/// <remarks>
/// One difference from the provider: when the server ended the session before it read the command (proven by the
/// dialect: on PostgreSQL, a FATAL error that answered the session reset travelling ahead of the command), the command
/// runs again on another connection from the pool (at most <see cref="MaxAttempts"/> attempts in all), and only outside
/// any transaction. A command that may have run is never retried.
/// </remarks>
[DesignerCategory("")]
public sealed class CovetDbCommand : DbCommand
{
    /// <summary>Attempts of one execute when each failure is proven to have come before the server read the command.</summary>
    private const int MaxAttempts = 3;

    private readonly DbCommand _inner;
    private DbConnection? _connection;
    private DbTransaction? _transaction;

    internal CovetDbCommand(CovetDbConnection? connection, DbCommand inner, int? defaultCommandTimeout)
    {
        _inner = inner;
        _connection = connection;
        if (defaultCommandTimeout is { } timeout)
            _inner.CommandTimeout = timeout;
    }

    /// <summary>The provider's own command (for provider-specific settings). Its connection is bound at execute time.</summary>
    public DbCommand InnerCommand => _inner;

    /// <inheritdoc />
    [AllowNull]
    public override string CommandText { get => _inner.CommandText; set => _inner.CommandText = value; }

    /// <summary>Seconds before the command times out: the provider's own default (or its connection string's), or <see cref="CovetPoolOptions.DefaultCommandTimeout"/> when set.</summary>
    public override int CommandTimeout { get => _inner.CommandTimeout; set => _inner.CommandTimeout = value; }

    /// <inheritdoc />
    public override CommandType CommandType { get => _inner.CommandType; set => _inner.CommandType = value; }

    /// <inheritdoc />
    public override UpdateRowSource UpdatedRowSource { get => _inner.UpdatedRowSource; set => _inner.UpdatedRowSource = value; }

    /// <inheritdoc />
    public override bool DesignTimeVisible { get => _inner.DesignTimeVisible; set => _inner.DesignTimeVisible = value; }

    /// <inheritdoc />
    protected override DbConnection? DbConnection
    {
        get => _connection;
        set
        {
            // The change is offered to the provider's command once it is bound, so a provider that refuses a new
            // connection while the command's reader is open (all three first-class providers do) throws its own
            // exception. No field of our own: the command object (one per Dapper query) does not grow.
            if (!ReferenceEquals(value, _connection) && _inner.Connection is not null)
                _inner.Connection = value is CovetDbConnection covet ? covet.PhysicalOrNull : value;
            _connection = value;
        }
    }

    /// <inheritdoc />
    protected override DbParameterCollection DbParameterCollection => _inner.Parameters;

    /// <inheritdoc />
    protected override DbTransaction? DbTransaction
    {
        get => _transaction;
        set
        {
            if (value is CovetDbTransaction { IsDetached: true } detached && detached.Owner.Dialect?.RefusesCompletedTransactionAtSet == true)
                throw new InvalidOperationException("This transaction has completed; it is no longer usable.");
            _transaction = value;
        }
    }

    /// <inheritdoc />
    public override void Cancel() => _inner.Cancel();

    /// <inheritdoc />
    protected override DbParameter CreateDbParameter() => _inner.CreateParameter();

    /// <inheritdoc />
    public override void Prepare()
    {
        var connection = Bind();
        Run(connection, static c => { c.Prepare(); return 0; });
    }

    /// <inheritdoc />
    public override async Task PrepareAsync(CancellationToken cancellationToken = default)
    {
        var connection = Bind();
        try
        {
            await _inner.PrepareAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Observe(connection, e))
        {
            throw;
        }
    }

    /// <inheritdoc />
    public override int ExecuteNonQuery() => Run(Bind(), static c => c.ExecuteNonQuery());

    /// <inheritdoc />
    public override object? ExecuteScalar() => Run(Bind(), static c => c.ExecuteScalar());

    // The async executes are each one async method awaiting the provider's task directly: one state machine per call
    // (a shared ValueTask helper plus AsTask cost a second one and a wrapper task on every query).

    /// <inheritdoc />
    public override async Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken)
    {
        var connection = Bind();
        var captured = connection?.CaptureForRetry();
        for (var attempt = 1; ; attempt++)
        {
            ExceptionDispatchInfo unread;
            try
            {
                return await _inner.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Observe(connection, e) || NeverRead(connection, captured, e, attempt, cancellationToken))
            {
                unread = ExceptionDispatchInfo.Capture(e);
            }
            captured = await RebindAfterUnreadFailureAsync(connection!, unread, async: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public override async Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken)
    {
        var connection = Bind();
        var captured = connection?.CaptureForRetry();
        for (var attempt = 1; ; attempt++)
        {
            ExceptionDispatchInfo unread;
            try
            {
                return await _inner.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Observe(connection, e) || NeverRead(connection, captured, e, attempt, cancellationToken))
            {
                unread = ExceptionDispatchInfo.Capture(e);
            }
            captured = await RebindAfterUnreadFailureAsync(connection!, unread, async: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        var connection = Bind();
        var captured = connection?.CaptureForRetry();
        for (var attempt = 1; ; attempt++)
        {
            ExceptionDispatchInfo unread;
            try
            {
                var reader = _inner.ExecuteReader(behavior & ~CommandBehavior.CloseConnection);
                connection?.Track(reader);
                return WrapIfClosing(reader, behavior, connection);
            }
            catch (Exception e) when (Observe(connection, e) || NeverRead(connection, captured, e, attempt, CancellationToken.None))
            {
                unread = ExceptionDispatchInfo.Capture(e);
            }
            captured = RebindAfterUnreadFailureAsync(connection!, unread, async: false, CancellationToken.None).GetAwaiter().GetResult();
        }
    }

    /// <inheritdoc />
    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        var connection = Bind();
        var captured = connection?.CaptureForRetry();
        for (var attempt = 1; ; attempt++)
        {
            ExceptionDispatchInfo unread;
            try
            {
                var reader = await _inner.ExecuteReaderAsync(behavior & ~CommandBehavior.CloseConnection, cancellationToken).ConfigureAwait(false);
                connection?.Track(reader);
                return WrapIfClosing(reader, behavior, connection);
            }
            catch (Exception e) when (Observe(connection, e) || NeverRead(connection, captured, e, attempt, cancellationToken))
            {
                unread = ExceptionDispatchInfo.Capture(e);
            }
            captured = await RebindAfterUnreadFailureAsync(connection!, unread, async: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Only when the caller asked the reader to close the connection (Dapper does when it opened it) is the provider's reader
    /// wrapped, so closing it returns the logical connection to the pool rather than closing the physical one.
    /// </summary>
    internal static DbDataReader WrapIfClosing(DbDataReader reader, CommandBehavior behavior, CovetDbConnection? connection) =>
        (behavior & CommandBehavior.CloseConnection) != 0 && connection is not null ? new CovetDbDataReader(reader, connection) : reader;

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _inner.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>Binds the inner command to the physical connection and transaction. Returns the logical connection.</summary>
    private CovetDbConnection? Bind()
    {
        if (_connection is not CovetDbConnection covet)
        {
            // A plain provider connection was assigned: pass through untouched.
            _inner.Connection = _connection;
            _inner.Transaction = _transaction is CovetDbTransaction ct ? ct.Inner : _transaction;
            return null;
        }
        var physical = covet.PhysicalForExecution(_inner.CommandText);
        if (!ReferenceEquals(_inner.Connection, physical))
            _inner.Connection = physical;
        var innerTransaction = InnerTransaction(_transaction);
        if (!ReferenceEquals(_inner.Transaction, innerTransaction))
            _inner.Transaction = innerTransaction;
        return covet;
    }

    /// <summary>
    /// The provider's transaction for the user's <paramref name="transaction"/>, exactly as given: none stays none, another
    /// connection's stays another connection's, a completed one stays completed, so the provider applies its own rule
    /// (MySqlConnector and SQLite refuse a foreign or missing transaction before sending anything; Npgsql uses the
    /// connection's). Only a transaction whose connection was closed is refused here: its provider transaction now
    /// belongs to the pool, and may sit on a physical connection another borrower holds.
    /// </summary>
    internal static DbTransaction? InnerTransaction(DbTransaction? transaction) => transaction switch
    {
        null => null,
        CovetDbTransaction { IsDetached: true } => throw new InvalidOperationException(
            "The command's transaction has completed: its connection was closed."),
        CovetDbTransaction covet => covet.Inner,
        _ => throw new InvalidOperationException("The command's Transaction is not a transaction of this Covet connection."),
    };

    private T Run<T>(CovetDbConnection? connection, Func<DbCommand, T> action)
    {
        var captured = connection?.CaptureForRetry();
        for (var attempt = 1; ; attempt++)
        {
            ExceptionDispatchInfo unread;
            try
            {
                return action(_inner);
            }
            catch (Exception e) when (Observe(connection, e) || NeverRead(connection, captured, e, attempt, CancellationToken.None))
            {
                unread = ExceptionDispatchInfo.Capture(e);
            }
            captured = RebindAfterUnreadFailureAsync(connection!, unread, async: false, CancellationToken.None).GetAwaiter().GetResult();
        }
    }

    // Issue 13. In an exception filter, after Observe (which marked the connection broken): the exception propagates
    // untouched unless the dialect proves the server never read the command (a retry then cannot run it twice).
    private static bool NeverRead(CovetDbConnection? connection, object? captured, Exception exception, int attempt, CancellationToken cancellationToken) =>
        attempt < MaxAttempts && connection is not null && connection.NeverReadByServer(captured, exception, cancellationToken);

    /// <summary>Takes another connection for the logical one, binds the inner command to it, and captures for the next attempt.</summary>
    private async ValueTask<object?> RebindAfterUnreadFailureAsync(CovetDbConnection connection, ExceptionDispatchInfo failure, bool async, CancellationToken cancellationToken)
    {
        await connection.ReplaceDeadConnectionAsync(failure, async, cancellationToken).ConfigureAwait(false);
        Bind();
        return connection.CaptureForRetry();
    }

    // An exception filter: the exception propagates untouched (same object, same stack), we only look at it.
    internal static bool Observe(CovetDbConnection? connection, Exception exception)
    {
        connection?.ObserveError(exception);
        return false;
    }
}
