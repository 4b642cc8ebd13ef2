using System.Net.Sockets;

namespace Covet.Data.Providers;

/// <summary>
/// One non-blocking look at a socket the driver owns, the way go-sql-driver/mysql's <c>conncheck.go</c> and
/// Microsoft.Data.SqlClient look at an idle connection before reuse: a connection the server closed is readable while
/// idle (end of stream, or the server's last message before it), so one system call tells it is dead, with no round trip.
/// </summary>
/// <remarks>
/// <para>Nothing is consumed: <see cref="Socket.Poll(int, SelectMode)"/> and <see cref="Socket.Available"/> only look,
/// and the optional peek at the first bytes uses <see cref="SocketFlags.Peek"/>, so what the driver reads next is
/// unchanged. The caller must own the connection (idle, out of the pool's idle set): then no other thread reads this
/// socket, so the bytes counted by <c>Available</c> are still there for the peek.</para>
/// <para>Cost: one <c>poll(2)</c> when quiet (the common case); <c>ioctl(FIONREAD)</c> and a peeking <c>recv</c> only when
/// something is waiting.</para>
/// </remarks>
internal static class SocketProbe
{
    /// <summary>Bytes peeked at most to recognise a server's goodbye (a message header).</summary>
    private const int HeaderBytes = 8;

    /// <summary>
    /// Looks at <paramref name="socket"/>. <paramref name="isGoodbye"/> recognises, from the first waiting bytes of the
    /// protocol in the clear, a message after which the server always closes (PostgreSQL's ErrorResponse outside a
    /// command, MySQL's error packet outside a command); it is not consulted when <paramref name="encrypted"/> (TLS or GSS
    /// records say nothing readable), and then waiting bytes are <see cref="SocketState.Readable"/>.
    /// </summary>
    public static SocketState Probe(Socket socket, bool encrypted, Func<ReadOnlySpan<byte>, bool>? isGoodbye)
    {
        try
        {
            if (!socket.Poll(0, SelectMode.SelectRead))
                return SocketState.Quiet;
            // Readable. Nothing to read then means end of stream (the peer's FIN) or a reset: poll reports both as readable.
            var available = socket.Available;
            if (available == 0)
                return SocketState.Closed;
            if (encrypted || isGoodbye is null)
                return SocketState.Readable;
            Span<byte> head = stackalloc byte[HeaderBytes];
            var peeked = socket.Receive(head[..Math.Min(available, HeaderBytes)], SocketFlags.Peek);
            if (peeked == 0)
                return SocketState.Closed;
            return isGoodbye(head[..peeked]) ? SocketState.Closed : SocketState.Readable;
        }
        catch (SocketException)
        {
            return SocketState.Closed; // a pending error (ECONNRESET...) surfaces here
        }
        catch (ObjectDisposedException)
        {
            return SocketState.Closed; // the driver closed it
        }
    }
}
