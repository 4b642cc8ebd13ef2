using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// Routes EF's connection events to the context's <see cref="CovetContextConnection"/>, and binds EF's commands to the
/// connection EF actually uses. Stateless: one instance serves every context.
/// </summary>
/// <remarks>
/// EF Core 10 raises <c>ConnectionOpening</c> from <c>RelationalConnection.Open</c> only when the connection is not open,
/// before it increments its open count, and <c>ConnectionClosing</c> from <c>Close</c> only when the count is back to
/// 0 and the connection is not already closed; a suppressed result skips EF's own <c>DbConnection.Open/Close</c>.
/// Interceptors registered in the options (the application's) run after this one and see the provider's connection in
/// <c>ConnectionOpened</c>.
/// <para>Commands: EF Core 10 creates the <c>DbCommand</c> of <c>ExecuteNonQuery</c> and <c>ExecuteScalar</c> (raw SQL,
/// <c>ExecuteUpdate</c>/<c>ExecuteDelete</c>, database creators) from its connection <em>before</em> it opens it, so such a
/// command is bound to EF's own, closed connection object while the open swaps the provider's physical connection in.
/// Just before execution (after the open) the command is re-bound to the connection EF now holds.</para>
/// </remarks>
internal sealed class CovetConnectionInterceptor : DbConnectionInterceptor, IDbCommandInterceptor
{
    public static readonly CovetConnectionInterceptor Instance = new();

    private CovetConnectionInterceptor()
    {
    }

    public override InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result)
    {
        if (result.IsSuppressed || StateOf(eventData) is not { } state)
            return result;
        var borrowed = state.TryBorrowAsync(eventData, async: false, CancellationToken.None);
        // async: false completes synchronously.
        return borrowed.GetAwaiter().GetResult() ? InterceptionResult.Suppress() : result;
    }

    public override async ValueTask<InterceptionResult> ConnectionOpeningAsync(DbConnection connection, ConnectionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (result.IsSuppressed || StateOf(eventData) is not { } state)
            return result;
        return await state.TryBorrowAsync(eventData, async: true, cancellationToken).ConfigureAwait(false) ? InterceptionResult.Suppress() : result;
    }

    public override InterceptionResult ConnectionClosing(DbConnection connection, ConnectionEventData eventData, InterceptionResult result) =>
        !result.IsSuppressed && StateOf(eventData) is { IsBorrowed: true } state && state.TryReturn(eventData) ? InterceptionResult.Suppress() : result;

    public override ValueTask<InterceptionResult> ConnectionClosingAsync(DbConnection connection, ConnectionEventData eventData, InterceptionResult result) =>
        ValueTask.FromResult(ConnectionClosing(connection, eventData, result)); // returning to Covet never does I/O

    // EF never disposes the physical connection (it is not owned while swapped in); this is the safety net for a
    // provider that does: the physical connection must go back to the pool, not be disposed under it.
    public override InterceptionResult ConnectionDisposing(DbConnection connection, ConnectionEventData eventData, InterceptionResult result) =>
        StateOf(eventData) is { IsBorrowed: true } state && state.TryReturn(eventData) ? InterceptionResult.Suppress() : result;

    public override ValueTask<InterceptionResult> ConnectionDisposingAsync(DbConnection connection, ConnectionEventData eventData, InterceptionResult result) =>
        ValueTask.FromResult(ConnectionDisposing(connection, eventData, result));

    public InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        Rebind(command, eventData);
        return result;
    }

    public ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        Rebind(command, eventData);
        return ValueTask.FromResult(result);
    }

    public InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result)
    {
        Rebind(command, eventData);
        return result;
    }

    public ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        Rebind(command, eventData);
        return ValueTask.FromResult(result);
    }

    public InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
    {
        Rebind(command, eventData);
        return result;
    }

    public ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        Rebind(command, eventData);
        return ValueTask.FromResult(result);
    }

    /// <summary>A command EF created from its own connection object before the open swapped Covet's in: bind it to the one in use.</summary>
    private static void Rebind(DbCommand command, CommandEventData eventData)
    {
        var current = eventData.Connection;
        var bound = command.Connection;
        if (ReferenceEquals(bound, current) || bound is null || current is null)
            return; // the usual case: one reference comparison
        if (StateOf(eventData.Context) is { IsBorrowed: true } state && state.IsBorrowedFor(bound, current))
            command.Connection = current;
    }

    private static CovetContextConnection? StateOf(ConnectionEventData eventData) => StateOf(eventData.Context);

    private static CovetContextConnection? StateOf(DbContext? context)
    {
        if (context is null)
            return null;
        // Found without the context's service provider once created, because events also come while the context is
        // being disposed (EF rolling back and closing from our own Dispose), when that provider throws.
        if (CovetContextConnection.Find(context) is { } state)
            return state;
        try
        {
            return ((IInfrastructure<IServiceProvider>)context).Instance.GetService(typeof(CovetContextConnection)) as CovetContextConnection;
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }
}
