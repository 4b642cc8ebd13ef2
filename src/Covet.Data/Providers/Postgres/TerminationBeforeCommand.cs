using System.Data.Common;
using System.Reflection;

namespace Covet.Data.Providers.Postgres;

/// <summary>
/// Proves, after a failure, that PostgreSQL ended the session before it read the command that failed, so running the
/// command again on another connection cannot run it twice.
/// </summary>
/// <remarks>
/// <para>The proof. A returned connection carries a reset queued by <see cref="NpgsqlResetPipelining"/>: Npgsql writes
/// <c>DISCARD ALL</c> in front of the next command, in the same packet, and counts its responses
/// (<c>PendingPrependedResponses</c>, 2: CommandComplete and ReadyForQuery). Reading the command's results, Npgsql first
/// reads those responses, decrementing the count after each (<c>NpgsqlConnector.ReadMessageLong</c>); an error meanwhile
/// breaks the connector and is thrown with the count left where it was. A PostgreSQL backend handles one message at a
/// time, in order, and flushes ReadyForQuery before it reads the next message; so if its error reached us before the
/// reset's ReadyForQuery, the backend had not begun the next message, the user's command. The error must also be FATAL
/// (or PANIC): the backend exits right after sending it, so it cannot go on to read the command later. (A non-fatal
/// error answering the reset would not do: the backend would carry on with the command, which Npgsql then never reads.)
/// </para>
/// <para>What does not prove it, so gives false: an I/O error (a reset or a cut connection may lose replies that were
/// sent: the command may have run), a FATAL error once the reset's responses were read (the command was read, may have
/// run and even committed: a kill mid-statement), and no queued reset at all. The connector must be taken before the
/// command (<see cref="NpgsqlResetPipelining.ConnectorWithQueuedReset"/>): once broken, Npgsql's connection lets go of it.</para>
/// <para>The retry this permits is still the command path's decision: only the first command after checkout, outside any
/// transaction (a retry elsewhere would lose the session's transaction), and at most once.</para>
/// </remarks>
internal static class TerminationBeforeCommand
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, Func<Exception, string?>?> Severities = new();

    /// <summary>True only when the failure provably answered the queued reset (see the remarks); never throws.</summary>
    public static bool Proves(NpgsqlResetPipelining pipelining, object? connector, Exception exception)
    {
        try
        {
            if (connector is null || pipelining.PendingResponses(connector) <= 0)
                return false;
            for (var e = exception; e is not null; e = e.InnerException)
            {
                if (e is DbException && Severity(e) is "FATAL" or "PANIC")
                    return true;
            }
            return false;
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <summary>PostgresException.InvariantSeverity (never localized), or null for any other exception.</summary>
    private static string? Severity(Exception exception) =>
        Severities.GetOrAdd(exception.GetType(), static type =>
        {
            if (type.FullName != "Npgsql.PostgresException")
                return null;
            var property = type.GetProperty("InvariantSeverity", BindingFlags.Instance | BindingFlags.Public);
            if (property?.PropertyType != typeof(string))
                return null;
            return e => (string?)property.GetValue(e);
        })?.Invoke(exception);
}
