using System.Data;
using System.Data.Common;
using System.Linq.Expressions;
using System.Net.Sockets;
using System.Reflection;

namespace Covet.Data.Providers.MySql;

/// <summary>
/// Reaches the socket under a MySqlConnector connection (<c>MySqlConnection.m_session</c> → <c>ServerSession.m_socket</c>)
/// to tell, without a round trip, whether the server has closed an idle connection (<see cref="SocketProbe"/>).
/// </summary>
/// <remarks>
/// <para>Bound once per connection type into compiled delegates. Checked against MySqlConnector 2.6.2: the session's
/// <c>m_socket</c> is the TCP or Unix-domain socket (null over a Windows named pipe: then <see cref="SocketState.Unknown"/>),
/// <c>m_sslStream</c> is set when TLS is on.</para>
/// <para>The MySQL protocol is strictly request-reply: between commands the server sends nothing unless it is ending the
/// session (an error packet, e.g. MariaDB's "Connection was killed" or MySQL 8's ER_CLIENT_INTERACTION_TIMEOUT, then the
/// close). So, in the clear, waiting bytes that start an error packet (header of 4 bytes, then 0xFF) are the goodbye;
/// anything else waiting is verified with the ping.</para>
/// </remarks>
internal sealed class MySqlConnectorSocketAccess
{
    private readonly Func<DbConnection, object?> _session;
    private readonly Func<object, Socket?> _socket;
    private readonly Func<object, bool> _encrypted;

    private MySqlConnectorSocketAccess(Func<DbConnection, object?> session, Func<object, Socket?> socket, Func<object, bool> encrypted)
    {
        _session = session;
        _socket = socket;
        _encrypted = encrypted;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, MySqlConnectorSocketAccess?> Bindings = new();

    /// <summary>The binding for this MySqlConnector connection type (made once per process), or null when its internals differ.</summary>
    public static MySqlConnectorSocketAccess? For(Type connectionType) => Bindings.GetOrAdd(connectionType, TryCreate);

    private static MySqlConnectorSocketAccess? TryCreate(Type connectionType)
    {
        try
        {
            const BindingFlags Any = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
            var session = connectionType.GetField("m_session", Any);
            var sessionType = session?.FieldType;
            var socket = sessionType?.GetField("m_socket", Any);
            var sslStream = sessionType?.GetField("m_sslStream", Any);
            if (session is null || sessionType is null || socket?.FieldType != typeof(Socket) || sslStream is null || sslStream.FieldType.IsValueType)
                return null;

            var connection = Expression.Parameter(typeof(DbConnection));
            var sessionObject = Expression.Parameter(typeof(object));
            var typed = Expression.Convert(sessionObject, sessionType);
            return new MySqlConnectorSocketAccess(
                Expression.Lambda<Func<DbConnection, object?>>(
                    Expression.Convert(Expression.Field(Expression.Convert(connection, connectionType), session), typeof(object)), connection).Compile(),
                Expression.Lambda<Func<object, Socket?>>(Expression.Field(typed, socket), sessionObject).Compile(),
                Expression.Lambda<Func<object, bool>>(
                    Expression.ReferenceNotEqual(Expression.Convert(Expression.Field(typed, sslStream), typeof(object)), Expression.Constant(null)), sessionObject).Compile());
        }
        catch (Exception)
        {
            return null; // a MySqlConnector whose internals differ: the pool pings instead
        }
    }

    /// <summary>Looks at an idle connection's socket (the caller owns the connection; no command is running on it).</summary>
    public SocketState Probe(DbConnection connection)
    {
        if (connection.State != ConnectionState.Open || _session(connection) is not { } session)
            return SocketState.Closed;
        if (_socket(session) is not { } socket)
            return SocketState.Unknown;
        return SocketProbe.Probe(socket, _encrypted(session), IsGoodbye);
    }

    /// <summary>The socket under <paramref name="connection"/>, whatever its state (null when there is none to reach).</summary>
    public Socket? SocketOf(DbConnection connection) => _session(connection) is { } session ? _socket(session) : null;

    /// <summary>A packet header (3 bytes length, 1 byte sequence) then 0xFF: an error packet, outside a command the session's end.</summary>
    private static bool IsGoodbye(ReadOnlySpan<byte> head) => head.Length >= 5 && head[4] == 0xFF;
}
