namespace Covet.Data.Providers;

/// <summary>What one look at an idle connection's socket tells, without blocking and without consuming any byte.</summary>
internal enum SocketState
{
    /// <summary>The dialect cannot see this driver's socket (an unknown driver version, a named pipe): use the ping.</summary>
    Unknown,

    /// <summary>Nothing to read and no hang-up: alive as far as the socket can tell (a vanished peer is invisible here).</summary>
    Quiet,

    /// <summary>
    /// Bytes wait that the driver has not read: possibly harmless (a PostgreSQL notification or parameter status, TLS
    /// records that cannot be inspected in the clear), possibly the server's goodbye. Verify with a ping before use.
    /// </summary>
    Readable,

    /// <summary>The server hung up (end of stream), the socket is in error, or the server's last message says it is ending the session: retire.</summary>
    Closed,
}
