using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// A command of the fake provider; see <see cref="FakeCommandInterpreter"/> for the command language.
/// Execution requires an open <see cref="FakeDbConnection"/> and, while that connection has an active
/// transaction, that <see cref="DbCommand.Transaction"/> is that transaction (like SqlClient).
/// </summary>
public sealed class FakeDbCommand : DbCommand
{
    private readonly FakeDbParameterCollection _parameters = new();
    private string _commandText = string.Empty;
    private int _commandTimeout = 30;
    private CancellationTokenSource? _currentExecution;

    public FakeDbCommand()
    {
    }

    public FakeDbCommand(string? commandText, FakeDbConnection? connection = null)
    {
        CommandText = commandText;
        Connection = connection;
    }

    [AllowNull]
    public override string CommandText
    {
        get => _commandText;
        set => _commandText = value ?? string.Empty;
    }

    /// <summary>Seconds; 0 = no timeout. Only the sync black-hole path waits for it (on the server TimeProvider).</summary>
    public override int CommandTimeout
    {
        get => _commandTimeout;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _commandTimeout = value;
        }
    }

    /// <summary>Ignored: the text is always interpreted (Dapper infers StoredProcedure for one-word texts like "FAIL").</summary>
    public override CommandType CommandType { get; set; } = CommandType.Text;

    public override bool DesignTimeVisible { get; set; }

    public override UpdateRowSource UpdatedRowSource { get; set; }

    /// <summary>Typed access to the parameters.</summary>
    public new FakeDbParameterCollection Parameters => _parameters;

    /// <summary>Number of times <see cref="Prepare"/> was called.</summary>
    public int PrepareCount { get; private set; }

    protected override DbConnection? DbConnection { get; set; }

    protected override DbParameterCollection DbParameterCollection => _parameters;

    protected override DbTransaction? DbTransaction { get; set; }

    /// <summary>
    /// Cancels the execution in progress (if any): it throws <see cref="FakeDbException"/> 57014
    /// "fake: canceling statement due to user request". The connection stays open.
    /// </summary>
    public override void Cancel()
    {
        try
        {
            Volatile.Read(ref _currentExecution)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The execution finished meanwhile.
        }
    }

    public override void Prepare() => PrepareCount++;

    protected override DbParameter CreateDbParameter() => new FakeDbParameter();

    public override int ExecuteNonQuery() =>
        ExecuteCoreAsync(async: false, CancellationToken.None).GetAwaiter().GetResult().Result.RecordsAffected;

    public override async Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken) =>
        (await ExecuteCoreAsync(async: true, cancellationToken).ConfigureAwait(false)).Result.RecordsAffected;

    public override object? ExecuteScalar() =>
        Scalar(ExecuteCoreAsync(async: false, CancellationToken.None).GetAwaiter().GetResult().Result);

    public override async Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken) =>
        Scalar((await ExecuteCoreAsync(async: true, cancellationToken).ConfigureAwait(false)).Result);

    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        (FakeResult result, FakeDbConnection connection) = ExecuteCoreAsync(async: false, CancellationToken.None).GetAwaiter().GetResult();
        return CreateReader(result, connection, behavior);
    }

    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        (FakeResult result, FakeDbConnection connection) = await ExecuteCoreAsync(async: true, cancellationToken).ConfigureAwait(false);
        return CreateReader(result, connection, behavior);
    }

    private static FakeDbDataReader CreateReader(FakeResult result, FakeDbConnection connection, CommandBehavior behavior)
    {
        var reader = new FakeDbDataReader(result, behavior, connection);
        connection.RegisterReader(reader);
        return reader;
    }

    private static object? Scalar(FakeResult result) =>
        result.Columns.Count > 0 && result.Rows.Count > 0 ? result.Rows[0][0] : null;

    private async ValueTask<(FakeResult Result, FakeDbConnection Connection)> ExecuteCoreAsync(bool async, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        FakeDbConnection connection = Validate();

        using var execution = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Volatile.Write(ref _currentExecution, execution);
        try
        {
            FakeResult result = await connection
                .ExecuteAsync(_commandText, _parameters.Items, _commandTimeout, async, execution.Token)
                .ConfigureAwait(false);
            return (result, connection);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Cancelled through Cancel(), not through the caller's token.
            throw new FakeDbException(FakeDbException.Canceled().Message, FakeDbException.QueryCanceledState, isTransient: false, ex);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("fake: the operation was canceled.", cancellationToken);
        }
        finally
        {
            Interlocked.CompareExchange(ref _currentExecution, null, execution);
        }
    }

    private FakeDbConnection Validate()
    {
        if (DbConnection is null)
        {
            throw new InvalidOperationException("fake: Connection property has not been initialized.");
        }

        if (DbConnection is not FakeDbConnection connection)
        {
            throw new InvalidOperationException($"fake: Connection must be a {nameof(FakeDbConnection)}, got {DbConnection.GetType().Name}.");
        }

        if (connection.State != ConnectionState.Open)
        {
            throw new InvalidOperationException("fake: Connection is not open.");
        }

        if (string.IsNullOrWhiteSpace(_commandText))
        {
            throw new InvalidOperationException("fake: CommandText property has not been initialized.");
        }

        FakeDbTransaction? active = connection.CurrentTransaction;
        if (active is not null && !ReferenceEquals(DbTransaction, active))
        {
            throw new InvalidOperationException(
                "fake: the command must have its Transaction set when its connection is in a pending local transaction.");
        }

        if (active is null && DbTransaction is not null)
        {
            throw new InvalidOperationException(
                "fake: the transaction is either not associated with the current connection or has been completed.");
        }

        return connection;
    }
}
