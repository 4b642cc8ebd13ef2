using Covet.Data.EntityFrameworkCore.Internal;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Covet.Data.EntityFrameworkCore;

/// <summary>Covet's pool of a context: statistics and clearing, from <c>context.Database</c>.</summary>
public static class CovetDatabaseFacadeExtensions
{
    /// <summary>
    /// Statistics of the Covet pool this context borrows from, or null when the context is not pooled by Covet (no
    /// <c>UseCovetPool</c>, a connection the application gave EF, or a data source that pools its connections itself).
    /// </summary>
    public static CovetPoolStatistics? GetCovetPoolStatistics(this DatabaseFacade database) => StateOf(database)?.GetStatistics();

    /// <summary>Closes the idle physical connections of this context's Covet pool; borrowed ones close when returned.</summary>
    public static void ClearCovetPool(this DatabaseFacade database) => StateOf(database)?.ClearPool();

    /// <summary>Whether the context's connection is, right now, a physical connection borrowed from Covet.</summary>
    public static bool IsCovetConnectionBorrowed(this DatabaseFacade database) => StateOf(database)?.IsBorrowed ?? false;

    private static CovetContextConnection? StateOf(DatabaseFacade database)
    {
        ArgumentNullException.ThrowIfNull(database);
        return ((IInfrastructure<IServiceProvider>)database).Instance.GetService(typeof(CovetContextConnection)) as CovetContextConnection;
    }
}
