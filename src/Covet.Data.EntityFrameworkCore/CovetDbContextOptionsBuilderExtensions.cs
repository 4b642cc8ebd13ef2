using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Covet.Data.EntityFrameworkCore;

/// <summary>
/// <c>UseCovetPool</c>: Covet's pool (pre-ping, leak stack traces, session reset, circuit breaker, statistics) for a
/// context of any relational EF Core provider, with no other change to the context or the code using it.
/// </summary>
/// <example>
/// <code>
/// options.UseNpgsql(connectionString).UseCovetPool(o => o.MaxPoolSize = 50);
/// options.UseSqlite("Data Source=app.db").UseCovetPool();
/// options.UseMySQL(connectionString).UseCovetPool(o => o.LeakDetectionThreshold = TimeSpan.FromSeconds(30));
/// </code>
/// </example>
/// <remarks>
/// <para>For each open EF manages (a query, SaveChanges, a transaction, <c>Database.OpenConnection</c>) the context
/// borrows a physical connection from Covet and EF uses the provider's own connection object, so everything
/// provider-specific keeps working. EF's connection object is back in place whenever the context is closed.</para>
/// <para>Pools are shared, one per (provider, connection string, pool settings), by every context configured alike, for the
/// life of the process. The provider's own pooling is turned off on Covet's physical connections only: the configured
/// connection string, <c>Database.GetConnectionString()</c> and EF's own connection object are left as written.</para>
/// <para>Contexts whose provider creates connections from a <see cref="System.Data.Common.DbDataSource"/> (EF Npgsql with
/// <c>MapEnum</c>, plugins or <c>ConfigureDataSource</c>) are pooled over a data source configured the same way, so its
/// type mappings and plugins apply to Covet's physical connections: for a data source EF builds, an unpooled copy EF
/// Npgsql builds from the same options with <c>Pooling=false</c> (one Covet pool per EF data source and pool settings,
/// living as long as EF's internal service provider). A data source the application gives EF (<c>UseNpgsql(dataSource)</c>,
/// or an <c>NpgsqlDataSource</c> in the application's services) is pooled over as it is, for the life of the process, and
/// must be built with <c>Pooling=false</c>; a pooling one throws <see cref="NotSupportedException"/> at the context's
/// first open.</para>
/// <para>Not pooled: a connection the application passes to EF (<c>UseNpgsql(connection)</c>, <c>SetDbConnection</c>)
/// and EF's secondary connections used to create, drop and check for databases.</para>
/// </remarks>
public static class CovetDbContextOptionsBuilderExtensions
{
    /// <summary>Pools this context's connections with Covet.</summary>
    /// <param name="optionsBuilder">Options already configured with a relational provider.</param>
    /// <param name="configure">Changes to Covet's default pool settings.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="CovetConfigurationException">A setting is out of range.</exception>
    public static DbContextOptionsBuilder UseCovetPool(this DbContextOptionsBuilder optionsBuilder, Action<CovetPoolOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);
        var options = new CovetPoolOptions();
        configure?.Invoke(options);
        return optionsBuilder.UseCovetPool(options);
    }

    /// <summary>Pools this context's connections with Covet, with the given settings (copied).</summary>
    /// <param name="optionsBuilder">Options already configured with a relational provider.</param>
    /// <param name="options">Pool settings, e.g. bound from configuration.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="CovetConfigurationException">A setting is out of range.</exception>
    public static DbContextOptionsBuilder UseCovetPool(this DbContextOptionsBuilder optionsBuilder, CovetPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);
        ArgumentNullException.ThrowIfNull(options);
        ((IDbContextOptionsBuilderInfrastructure)optionsBuilder).AddOrUpdateExtension(new CovetPoolOptionsExtension(options));
        return optionsBuilder;
    }

    /// <summary>Pools this context's connections with Covet.</summary>
    /// <typeparam name="TContext">The context type.</typeparam>
    /// <param name="optionsBuilder">Options already configured with a relational provider.</param>
    /// <param name="configure">Changes to Covet's default pool settings.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="CovetConfigurationException">A setting is out of range.</exception>
    public static DbContextOptionsBuilder<TContext> UseCovetPool<TContext>(this DbContextOptionsBuilder<TContext> optionsBuilder, Action<CovetPoolOptions>? configure = null)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)UseCovetPool((DbContextOptionsBuilder)optionsBuilder, configure);

    /// <summary>Pools this context's connections with Covet, with the given settings (copied).</summary>
    /// <typeparam name="TContext">The context type.</typeparam>
    /// <param name="optionsBuilder">Options already configured with a relational provider.</param>
    /// <param name="options">Pool settings, e.g. bound from configuration.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="CovetConfigurationException">A setting is out of range.</exception>
    public static DbContextOptionsBuilder<TContext> UseCovetPool<TContext>(this DbContextOptionsBuilder<TContext> optionsBuilder, CovetPoolOptions options)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)UseCovetPool((DbContextOptionsBuilder)optionsBuilder, options);
}
