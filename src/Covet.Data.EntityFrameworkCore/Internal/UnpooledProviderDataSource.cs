using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// Turns the provider's own pooling off in the connection string EF Npgsql builds its <c>NpgsqlDataSource</c> from, so
/// that data source (which carries <c>MapEnum</c>, plugins and <c>ConfigureDataSource</c>) opens one physical connection
/// per open and Covet pools over it: <see cref="CovetDataSource.Create(DbDataSource, CovetPoolOptions?)"/>.
/// </summary>
/// <remarks>
/// <para>Why the configured connection string: EF Npgsql 9+ builds the data source itself, once per connection string,
/// inside its <c>NpgsqlDataSourceManager</c> (a singleton of EF's internal services), from
/// <c>RelationalOptionsExtension.ConnectionString</c> plus the enum mappings, plugins and builder action of its options.
/// Rebuilding that data source outside EF would mean redoing EF Npgsql's configuration; making EF build it unpooled
/// keeps every mapping and plugin exactly as EF sets them up, with one public API (<c>WithConnectionString</c>).</para>
/// <para>Why always for Npgsql, not only when a data source will be used: whether EF builds one also depends on plugins
/// registered as services, which are not known while the options are built. Without a data source the string only
/// reaches EF's own connection object, which Covet never lets EF open (it swaps its physical connection in), and EF's
/// admin and clone connections, which EF Npgsql opens with <c>Pooling=false</c> anyway. <c>Enlist</c> is left as it is:
/// EF Npgsql reads it from this string to decide whether to enlist in <c>Transaction.Current</c>.</para>
/// <para>Only EF Npgsql builds a data source from the configured string; other providers' strings are left untouched.</para>
/// </remarks>
internal static class UnpooledProviderDataSource
{
    private const string NpgsqlOptionsExtensionName = "Npgsql.EntityFrameworkCore.PostgreSQL.Infrastructure.Internal.NpgsqlOptionsExtension";

    /// <summary>Sets <c>Pooling=false</c> in EF Npgsql's configured connection string, if there is one and it pools.</summary>
    public static void Configure(DbContextOptionsBuilder optionsBuilder)
    {
        var relational = optionsBuilder.Options.Extensions.OfType<RelationalOptionsExtension>().FirstOrDefault();
        if (relational?.GetType().FullName != NpgsqlOptionsExtensionName || relational.ConnectionString is not { Length: > 0 } connectionString)
            return; // another provider, or a data source / connection / no string given to EF: nothing EF builds from a string
        var unpooled = WithoutPooling(connectionString);
        if (!ReferenceEquals(unpooled, connectionString))
            ((IDbContextOptionsBuilderInfrastructure)optionsBuilder).AddOrUpdateExtension(relational.WithConnectionString(unpooled));
    }

    /// <summary><paramref name="connectionString"/> with <c>Pooling=false</c>; the same instance when it already says so.</summary>
    public static string WithoutPooling(string connectionString)
    {
        // The generic builder parses the same syntax as Npgsql's (NpgsqlConnectionStringBuilder derives from it), with
        // case-insensitive keys, and keeps every other keyword (the password included) as it is.
        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        if (builder.TryGetValue("Pooling", out var pooling)
            && string.Equals(Convert.ToString(pooling, CultureInfo.InvariantCulture), "false", StringComparison.OrdinalIgnoreCase))
            return connectionString;
        builder["Pooling"] = "false";
        return builder.ConnectionString;
    }
}
