using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>Counts the commands EF executes, and checks each runs on the provider's own connection type.</summary>
internal sealed class CommandCounter(Type providerConnectionType) : DbCommandInterceptor
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public List<string> WrongConnections { get; } = [];

    private void Count1(DbCommand command)
    {
        Interlocked.Increment(ref _count);
        if (command.Connection?.GetType() != providerConnectionType)
            lock (WrongConnections)
                WrongConnections.Add($"{command.Connection?.GetType().FullName}: {command.CommandText}");
    }

    public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
    {
        Count1(command);
        return result;
    }

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        Count1(command);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        Count1(command);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        Count1(command);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result)
    {
        Count1(command);
        return result;
    }

    public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        Count1(command);
        return ValueTask.FromResult(result);
    }
}
