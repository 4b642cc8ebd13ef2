using System.Data;
using System.Data.Common;
using System.Linq.Expressions;
using System.Reflection;

namespace Covet.Data.Providers.Postgres;

/// <summary>
/// Queues <c>DISCARD ALL</c> on an idle Npgsql connection so it travels with the next command, exactly as Npgsql's own
/// pool does when a pooled connection is closed: the reset costs no round trip and no thread hop.
/// </summary>
/// <remarks>
/// <para>Npgsql keeps this mechanism internal (<c>NpgsqlConnector.PrependInternalMessage</c> with the pregenerated
/// <c>DISCARD ALL</c> message), and turns it on only for its own pooled connections; Covet opens physical connections with
/// <c>Pooling=false</c>, so it binds the same members by reflection, once, into compiled delegates. If any member is
/// missing (another Npgsql version), <see cref="TryCreate"/> returns null and the pool falls back to a background reset.</para>
/// <para>It is used only when it is exactly as safe as Npgsql's own use: the connection is idle (no reader, no command),
/// not in a transaction (DISCARD ALL would fail there; the pool rolls back with a round trip instead), nothing else is
/// prepended, no statements are prepared (DISCARD ALL would deallocate them behind Npgsql's back), and keepalive is off
/// (a keepalive timer could write to the buffer concurrently).</para>
/// </remarks>
internal sealed class NpgsqlResetPipelining
{
    private readonly Func<DbConnection, object?> _connector;
    private readonly Func<object, int> _connectorState;
    private readonly int _ready;
    private readonly Func<object, int> _transactionStatus;
    private readonly int _idle;
    private readonly Func<object, int> _pendingPrepended;
    private readonly Func<object, int> _numPrepared;
    private readonly Action<object, byte[], int> _prepend;
    private readonly byte[] _discardAll;

    // Optional (private in Npgsql): the reset message that keeps prepared statements, generated per connector.
    private readonly Func<object, (byte[]? Message, int Responses)>? _keepPreparedReset;

    private NpgsqlResetPipelining(Func<DbConnection, object?> connector, Func<object, int> connectorState, int ready,
        Func<object, int> transactionStatus, int idle,
        Func<object, int> pendingPrepended, Func<object, int> numPrepared, Action<object, byte[], int> prepend, byte[] discardAll,
        Func<object, (byte[]? Message, int Responses)>? keepPreparedReset)
    {
        _keepPreparedReset = keepPreparedReset;
        _connector = connector;
        _connectorState = connectorState;
        _ready = ready;
        _transactionStatus = transactionStatus;
        _idle = idle;
        _pendingPrepended = pendingPrepended;
        _numPrepared = numPrepared;
        _prepend = prepend;
        _discardAll = discardAll;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, NpgsqlResetPipelining?> Bindings = new();

    /// <summary>The binding for this Npgsql connection type (made once per process), or null when its internals differ.</summary>
    public static NpgsqlResetPipelining? For(Type connectionType) => Bindings.GetOrAdd(connectionType, TryCreate);

    private static NpgsqlResetPipelining? TryCreate(Type connectionType)
    {
        try
        {
            const BindingFlags Any = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
            var assembly = connectionType.Assembly;
            var connectorProperty = connectionType.GetProperty("Connector", Any);
            var connectorType = connectorProperty?.PropertyType;
            var state = connectorType?.GetProperty("State", Any);
            var status = connectorType?.GetProperty("TransactionStatus", Any);
            var pending = connectorType?.GetProperty("PendingPrependedResponses", Any);
            var manager = connectorType?.GetProperty("PreparedStatementManager", Any);
            var numPrepared = manager?.PropertyType.GetField("NumPrepared", Any);
            var prepend = connectorType?.GetMethod("PrependInternalMessage", Any, [typeof(byte[]), typeof(int)]);
            var discardAll = assembly.GetType("Npgsql.PregeneratedMessages")?.GetField("DiscardAll", Any)?.GetValue(null) as byte[];
            if (connectorProperty is null || connectorType is null || state is null || !state.PropertyType.IsEnum || status is null || !status.PropertyType.IsEnum || pending?.PropertyType != typeof(int)
                || manager is null || numPrepared?.FieldType != typeof(int) || prepend is null || discardAll is null)
                return null;
            var idle = Convert.ToInt32(Enum.Parse(status.PropertyType, "Idle"), System.Globalization.CultureInfo.InvariantCulture);
            var ready = Convert.ToInt32(Enum.Parse(state.PropertyType, "Ready"), System.Globalization.CultureInfo.InvariantCulture);

            var connection = Expression.Parameter(typeof(DbConnection));
            var connectorObject = Expression.Parameter(typeof(object));
            var typedConnector = Expression.Convert(connectorObject, connectorType);
            var bytes = Expression.Parameter(typeof(byte[]));
            var count = Expression.Parameter(typeof(int));
            return new NpgsqlResetPipelining(
                Expression.Lambda<Func<DbConnection, object?>>(
                    Expression.Convert(Expression.Property(Expression.Convert(connection, connectionType), connectorProperty), typeof(object)), connection).Compile(),
                Expression.Lambda<Func<object, int>>(
                    Expression.Convert(Expression.Property(typedConnector, state), typeof(int)), connectorObject).Compile(),
                ready,
                Expression.Lambda<Func<object, int>>(
                    Expression.Convert(Expression.Property(typedConnector, status), typeof(int)), connectorObject).Compile(),
                idle,
                Expression.Lambda<Func<object, int>>(Expression.Property(typedConnector, pending), connectorObject).Compile(),
                Expression.Lambda<Func<object, int>>(Expression.Field(Expression.Property(typedConnector, manager), numPrepared), connectorObject).Compile(),
                Expression.Lambda<Action<object, byte[], int>>(Expression.Call(typedConnector, prepend, bytes, count), connectorObject, bytes, count).Compile(),
                discardAll,
                BindKeepPreparedReset(connectorType));
        }
        catch (Exception)
        {
            return null; // an Npgsql whose internals differ: the pool resets with a round trip instead
        }
    }

    /// <summary>
    /// Npgsql's own "reset without DEALLOCATE" message (what its pool prepends when statements are prepared), generated on
    /// the connector on first use. Null when these private members are not there; such connections reset with a round trip.
    /// </summary>
    private static Func<object, (byte[]?, int)>? BindKeepPreparedReset(Type connectorType)
    {
        const BindingFlags Any = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        var generate = connectorType.GetMethod("GenerateResetMessage", Any, Type.EmptyTypes);
        var message = connectorType.GetField("_resetWithoutDeallocateMessage", Any);
        var responses = connectorType.GetField("_resetWithoutDeallocateResponseCount", Any);
        if (generate is null || message?.FieldType != typeof(byte[]) || responses?.FieldType != typeof(int))
            return null;
        var getMessage = message.GetValue;
        var getResponses = responses.GetValue;
        return connector =>
        {
            if (getMessage(connector) is null)
                generate.Invoke(connector, null);
            return ((byte[]?)getMessage(connector), (int)getResponses(connector)!);
        };
    }

    /// <summary>Whether Npgsql's connector is idle and in sync (no command running, no reader open, not broken).</summary>
    public bool IsReady(DbConnection connection) => _connector(connection) is { } c && _connectorState(c) == _ready;

    /// <summary>Whether the session is inside a transaction block (SQL-level BEGIN left open by a borrower).</summary>
    public bool InTransaction(DbConnection connection) => _connector(connection) is { } c && _transactionStatus(c) != _idle;

    /// <summary>Whether Npgsql holds prepared statements on this session (DISCARD ALL would deallocate them behind its back).</summary>
    public bool HasPreparedStatements(DbConnection connection) => _connector(connection) is { } c && _numPrepared(c) != 0;

    /// <summary>
    /// Npgsql's connector when a queued reset will travel with the next command (null otherwise). Taken before the
    /// command: a connection Npgsql breaks lets go of its connector, so it cannot be asked afterwards.
    /// </summary>
    public object? ConnectorWithQueuedReset(DbConnection connection) =>
        _connector(connection) is { } c && _pendingPrepended(c) > 0 ? c : null;

    /// <summary>
    /// Responses to prepended messages (the queued reset) that Npgsql has not read yet. Npgsql counts them down as it
    /// reads them, before the first response to the command itself; a failure while reading them leaves the count where
    /// it was (the connector is broken, nothing resets it).
    /// </summary>
    public int PendingResponses(object connector) => _pendingPrepended(connector);

    /// <summary>Queues the reset if it is safe to; false means the caller must reset with a round trip.</summary>
    public bool TryQueue(DbConnection connection)
    {
        if (connection.State != ConnectionState.Open || _connector(connection) is not { } connector)
            return false;
        if (_connectorState(connector) != _ready || _transactionStatus(connector) != _idle || _pendingPrepended(connector) != 0)
            return false;
        if (_numPrepared(connector) == 0)
        {
            // DISCARD ALL answers with CommandComplete and ReadyForQuery: two responses for the driver to consume first.
            _prepend(connector, _discardAll, 2);
            return true;
        }
        if (_keepPreparedReset?.Invoke(connector) is ({ } message, var responses))
        {
            _prepend(connector, message, responses);
            return true;
        }
        return false;
    }
}
