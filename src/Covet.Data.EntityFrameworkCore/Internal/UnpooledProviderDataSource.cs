using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// For a data source EF Npgsql built itself (<c>MapEnum</c>, plugins, <c>ConfigureDataSource</c>): an unpooled copy of it,
/// built by EF Npgsql's own <c>NpgsqlDataSourceManager</c> from the same options with <c>Pooling=false</c> in the
/// connection string. Covet pools over the copy; EF's data source, EF's connection object and the configured connection
/// string stay exactly as the application wrote them.
/// </summary>
/// <remarks>
/// <para>Why a copy rather than changing what EF builds. EF Npgsql 9+ builds its data source itself, once per connection
/// string, in <c>NpgsqlDataSourceManager</c> (a singleton of EF's internal services), from the options' connection string,
/// enum mappings, plugins (services), certificate callbacks and <c>ConfigureDataSource</c> action. Rewriting the
/// configured string to <c>Pooling=false</c> (what an earlier version did) reached every Npgsql context, including the
/// many that never get a data source: <c>Database.GetConnectionString()</c> and EF's own connection object then carried
/// <c>Pooling=false</c>, so a connection the application opens itself from them (<c>GetDbConnection().Open()</c>,
/// <c>new NpgsqlConnection(GetConnectionString())</c>) silently lost Npgsql's pool. Rewriting only when a data source will
/// be built cannot be decided while the options are built either: plugins (NodaTime, NetTopologySuite) are services, known
/// only to the internal service provider. Here nothing is rewritten: at a context's first open, once EF has shown which
/// data source it uses, Covet asks EF's own manager to build a second one from a copy of the options whose only
/// difference is <c>Pooling=false</c>, so every mapping, plugin and callback is configured by EF's code, as EF does it.</para>
/// <para>The price: <c>CreateDataSource</c> is a protected member of an internal EF Npgsql type (reflection, resolved once
/// per type; the package is built and tested against EF Npgsql 10), and the <c>ConfigureDataSource</c> action and the
/// plugins run twice, once for each data source. When the member is missing, the data source is treated like one the
/// application gave EF: pooled over as it is, which needs <c>Pooling=false</c> in the connection string.</para>
/// <para>Only a data source EF's manager returns for these very options is copied; one the application gave EF
/// (<c>UseNpgsql(dataSource)</c>, an <c>NpgsqlDataSource</c> in its services) is the application's to configure.</para>
/// </remarks>
internal static class UnpooledProviderDataSource
{
    private const string NpgsqlOptionsExtensionName = "Npgsql.EntityFrameworkCore.PostgreSQL.Infrastructure.Internal.NpgsqlOptionsExtension";
    private const string NpgsqlDataSourceManagerName = "Npgsql.EntityFrameworkCore.PostgreSQL.Storage.Internal.NpgsqlDataSourceManager";

    private static readonly ConcurrentDictionary<Type, EfNpgsqlApi?> Apis = new();

    /// <summary>
    /// A function building an unpooled copy of <paramref name="dataSource"/> when EF Npgsql's manager built it for
    /// <paramref name="options"/>; null when the data source is the application's (or the provider is not EF Npgsql).
    /// </summary>
    /// <param name="efServices">The context's internal service provider (EF's, where the manager is a singleton).</param>
    /// <param name="options">The context's options.</param>
    /// <param name="dataSource">The data source EF's connection has.</param>
    public static Func<DbDataSource>? FindCopyBuilder(IServiceProvider efServices, IDbContextOptions options, DbDataSource dataSource)
    {
        var extension = options.Extensions.OfType<RelationalOptionsExtension>().FirstOrDefault();
        if (extension is null || Apis.GetOrAdd(extension.GetType(), EfNpgsqlApi.Find) is not { } api)
            return null;
        // Mirrors NpgsqlDataSourceManager.GetDataSource: a data source given to UseNpgsql, or none with a connection, or the
        // application's NpgsqlDataSource service when UseNpgsql has neither string nor ConfigureDataSource: not EF's.
        if (api.DataSourceOf(extension) is not null || extension.Connection is not null
            || (extension.ConnectionString is null && api.BuilderActionOf(extension) is null))
            return null;
        if (efServices.GetService(api.ManagerType) is not { } manager)
            return null;
        var applicationServices = options.FindExtension<CoreOptionsExtension>()?.ApplicationServiceProvider;
        if (!ReferenceEquals(api.GetDataSource(manager, extension, applicationServices), dataSource))
            return null; // replaced by the application since (NpgsqlRelationalConnection.DbDataSource)
        var unpooled = extension.WithConnectionString(WithoutPooling(extension.ConnectionString ?? ""));
        return () => api.CreateDataSource(manager, unpooled);
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

    /// <summary>The members of EF Npgsql this needs, found by name once per options extension type.</summary>
    private sealed class EfNpgsqlApi
    {
        private PropertyInfo _dataSource = null!;
        private PropertyInfo _builderAction = null!;
        private MethodInfo _getDataSource = null!;
        private MethodInfo _createDataSource = null!;

        public Type ManagerType { get; private init; } = null!;

        public static EfNpgsqlApi? Find(Type extensionType)
        {
            var npgsql = extensionType;
            while (npgsql is not null && npgsql.FullName != NpgsqlOptionsExtensionName)
                npgsql = npgsql.BaseType;
            if (npgsql is null || npgsql.Assembly.GetType(NpgsqlDataSourceManagerName) is not { } manager)
                return null; // another provider
            const BindingFlags instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
            var dataSource = npgsql.GetProperty("DataSource", BindingFlags.Instance | BindingFlags.Public);
            var builderAction = npgsql.GetProperty("DataSourceBuilderAction", BindingFlags.Instance | BindingFlags.Public);
            var getDataSource = manager.GetMethod("GetDataSource", BindingFlags.Instance | BindingFlags.Public, [npgsql, typeof(IServiceProvider)]);
            // CreateDataSource in EF Npgsql 10 (CreateSingletonDataSource in earlier versions): protected virtual, builds from the options.
            var createDataSource = manager.GetMethods(instance).FirstOrDefault(m =>
                m.Name is "CreateDataSource" or "CreateSingletonDataSource"
                && typeof(DbDataSource).IsAssignableFrom(m.ReturnType)
                && m.GetParameters() is [var parameter] && parameter.ParameterType.IsAssignableFrom(npgsql));
            if (dataSource is null || builderAction is null || getDataSource is null || createDataSource is null
                || !typeof(DbDataSource).IsAssignableFrom(dataSource.PropertyType) || !typeof(DbDataSource).IsAssignableFrom(getDataSource.ReturnType))
                return null;
            return new EfNpgsqlApi
            {
                ManagerType = manager,
                _dataSource = dataSource,
                _builderAction = builderAction,
                _getDataSource = getDataSource,
                _createDataSource = createDataSource,
            };
        }

        public DbDataSource? DataSourceOf(RelationalOptionsExtension extension) => (DbDataSource?)_dataSource.GetValue(extension);

        public object? BuilderActionOf(RelationalOptionsExtension extension) => _builderAction.GetValue(extension);

        public DbDataSource? GetDataSource(object manager, RelationalOptionsExtension extension, IServiceProvider? applicationServices) =>
            (DbDataSource?)Invoke(_getDataSource, manager, [extension, applicationServices]);

        public DbDataSource CreateDataSource(object manager, RelationalOptionsExtension extension) =>
            (DbDataSource?)Invoke(_createDataSource, manager, [extension])
            ?? throw new InvalidOperationException($"{ManagerType.Name}.{_createDataSource.Name} returned no data source.");

        private static object? Invoke(MethodInfo method, object target, object?[] arguments)
        {
            try
            {
                return method.Invoke(target, arguments);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw; // unreachable
            }
        }
    }
}
