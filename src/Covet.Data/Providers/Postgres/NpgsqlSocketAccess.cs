using System.Data;
using System.Data.Common;
using System.Linq.Expressions;
using System.Net.Sockets;
using System.Reflection;

namespace Covet.Data.Providers.Postgres;

/// <summary>
/// Reaches the socket under an Npgsql connection (<c>NpgsqlConnection.Connector._socket</c>) to tell, without a round
/// trip, whether the server has closed an idle connection (<see cref="SocketProbe"/>).
/// </summary>
/// <remarks>
/// <para>Npgsql keeps the members private; they are bound once per connection type into compiled delegates, like
/// <see cref="NpgsqlResetPipelining"/>. Checked against Npgsql 10.0.3 (and the same names since Npgsql 5): the connector's
/// <c>_socket</c> (TCP or Unix-domain), <c>_baseStream</c> (a <see cref="NetworkStream"/> over it) and <c>_stream</c>
/// (the same object in the clear; an <c>SslStream</c> or GSS stream over it when encrypted), and
/// <c>ReadBuffer.ReadBytesLeft</c> (input the driver has read from the socket but not parsed). When any is missing,
/// <see cref="TryCreate"/> returns null and the pool keeps today's behaviour (the ping).</para>
/// <para>PostgreSQL ends a session it terminates (<c>pg_terminate_backend</c>, shutdown, idle timeouts) with an
/// ErrorResponse (<c>'E'</c>, severity FATAL) and then closes the socket; outside a command the only other messages
/// that may arrive are NoticeResponse (<c>'N'</c>), NotificationResponse (<c>'A'</c>) and ParameterStatus (<c>'S'</c>).
/// So an idle connection whose next byte is <c>'E'</c> is dying even before the close arrives; the other three may be
/// harmless and are verified with a ping (which lets Npgsql process them: a notification is still delivered).</para>
/// </remarks>
internal sealed class NpgsqlSocketAccess
{
    private readonly Func<DbConnection, object?> _connector;
    private readonly Func<object, Socket?> _socket;
    private readonly Func<object, bool> _encrypted;
    private readonly Func<object, int> _bufferedBytes;

    private NpgsqlSocketAccess(Func<DbConnection, object?> connector, Func<object, Socket?> socket, Func<object, bool> encrypted, Func<object, int> bufferedBytes)
    {
        _connector = connector;
        _socket = socket;
        _encrypted = encrypted;
        _bufferedBytes = bufferedBytes;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, NpgsqlSocketAccess?> Bindings = new();

    /// <summary>The binding for this Npgsql connection type (made once per process), or null when its internals differ.</summary>
    public static NpgsqlSocketAccess? For(Type connectionType) => Bindings.GetOrAdd(connectionType, TryCreate);

    private static NpgsqlSocketAccess? TryCreate(Type connectionType)
    {
        try
        {
            const BindingFlags Any = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
            var connectorProperty = connectionType.GetProperty("Connector", Any);
            var connectorType = connectorProperty?.PropertyType;
            var socket = connectorType?.GetField("_socket", Any);
            var baseStream = connectorType?.GetField("_baseStream", Any);
            var stream = connectorType?.GetField("_stream", Any);
            var readBuffer = connectorType?.GetProperty("ReadBuffer", Any);
            var bytesLeft = readBuffer?.PropertyType.GetProperty("ReadBytesLeft", Any);
            if (connectorProperty is null || connectorType is null || socket?.FieldType != typeof(Socket) || baseStream is null
                || !typeof(Stream).IsAssignableFrom(baseStream.FieldType) || stream is null || !typeof(Stream).IsAssignableFrom(stream.FieldType)
                || readBuffer is null || bytesLeft?.PropertyType != typeof(int))
                return null;

            var connection = Expression.Parameter(typeof(DbConnection));
            var connectorObject = Expression.Parameter(typeof(object));
            var typed = Expression.Convert(connectorObject, connectorType);
            var buffer = Expression.Property(typed, readBuffer);
            return new NpgsqlSocketAccess(
                Expression.Lambda<Func<DbConnection, object?>>(
                    Expression.Convert(Expression.Property(Expression.Convert(connection, connectionType), connectorProperty), typeof(object)), connection).Compile(),
                Expression.Lambda<Func<object, Socket?>>(Expression.Field(typed, socket), connectorObject).Compile(),
                // Encrypted when the stream Npgsql reads is not the plain NetworkStream over the socket.
                Expression.Lambda<Func<object, bool>>(
                    Expression.ReferenceNotEqual(Expression.Convert(Expression.Field(typed, stream), typeof(object)),
                        Expression.Convert(Expression.Field(typed, baseStream), typeof(object))), connectorObject).Compile(),
                Expression.Lambda<Func<object, int>>(
                    Expression.Condition(Expression.Equal(buffer, Expression.Constant(null, readBuffer.PropertyType)),
                        Expression.Constant(0), Expression.Property(buffer, bytesLeft)), connectorObject).Compile());
        }
        catch (Exception)
        {
            return null; // an Npgsql whose internals differ: the pool pings instead
        }
    }

    /// <summary>
    /// Looks at an idle connection's socket. The caller owns the connection and no command is running on it, so nothing
    /// else reads the socket meanwhile.
    /// </summary>
    public SocketState Probe(DbConnection connection)
    {
        if (connection.State != ConnectionState.Open || _connector(connection) is not { } connector)
            return SocketState.Closed;
        if (_socket(connector) is not { } socket)
            return SocketState.Unknown;
        // Input already in the driver's buffer (an asynchronous message read together with the last reply) is invisible
        // to the socket; and the socket's next byte would not start a message. Let the ping have Npgsql read it.
        if (_bufferedBytes(connector) > 0)
            return SocketState.Readable;
        return SocketProbe.Probe(socket, _encrypted(connector), IsGoodbye);
    }

    /// <summary>The socket under <paramref name="connection"/>, whatever its state (null when there is none to reach).</summary>
    public Socket? SocketOf(DbConnection connection) => _connector(connection) is { } connector ? _socket(connector) : null;

    /// <summary>The first byte of the next message is ErrorResponse: outside a command, that is the session's end.</summary>
    private static bool IsGoodbye(ReadOnlySpan<byte> head) => head[0] == (byte)'E';
}
