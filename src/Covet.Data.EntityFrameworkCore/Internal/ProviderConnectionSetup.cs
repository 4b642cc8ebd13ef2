using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore.Storage;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// What a provider's <see cref="RelationalConnection"/> does to the connections it creates, redone on Covet's physical
/// connections (EF never creates those, so its <c>CreateDbConnection</c> never saw them). One instance per
/// <see cref="RelationalConnection"/> type.
/// </summary>
/// <remarks>
/// <para>EF Core SQLite registers its functions (<c>regexp</c>, the <c>ef_*</c> decimal arithmetic and aggregates, the
/// <c>EF_DECIMAL</c> collation), loads SpatiaLite when asked, and sets the default timeout, all in
/// <c>SqliteRelationalConnection.InitializeDbConnection(DbConnection)</c>. Functions registered on an open
/// <c>SqliteConnection</c> apply at once and live as long as the physical connection, so each physical connection is
/// initialised once, by the first context type that borrows it.</para>
/// <para>What a data source does to its connections (EF Npgsql's <c>NpgsqlDataSource</c>: type mappings such as
/// <c>MapEnum</c>, plugins, <c>ConfigureDataSource</c>, SSL callbacks) cannot be redone on a connection made from
/// <c>NpgsqlFactory</c> and a connection string: such a context's physical connections come from the data source itself
/// (<see cref="FindDataSource"/>, <see cref="CovetEfPools.GetDataSource"/>).</para>
/// </remarks>
internal sealed class ProviderConnectionSetup
{
    private static readonly ConcurrentDictionary<Type, ProviderConnectionSetup> ByType = new();
    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> CallbackProperties = new();

    // Physical connection → the RelationalConnection type that initialised it.
    private static readonly ConditionalWeakTable<DbConnection, Type> Initialized = new();

    private readonly MethodInfo? _initialize;
    private readonly PropertyInfo? _supportsAmbientTransactions;
    private readonly PropertyInfo? _dataSource;

    private ProviderConnectionSetup(Type relationalConnectionType)
    {
        RelationalConnectionType = relationalConnectionType;
        const BindingFlags instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        _initialize = relationalConnectionType.GetMethod("InitializeDbConnection", instance, [typeof(DbConnection)]);
        _supportsAmbientTransactions = relationalConnectionType.GetProperty("SupportsAmbientTransactions", instance, null, typeof(bool), [], null);
        // Npgsql: NpgsqlRelationalConnection.DataSource (DbDataSource?), also exposed as DbDataSource.
        _dataSource = relationalConnectionType.GetProperties(BindingFlags.Instance | BindingFlags.Public)
            .FirstOrDefault(p => p.Name is "DataSource" or "DbDataSource" && typeof(DbDataSource).IsAssignableFrom(p.PropertyType) && p.GetIndexParameters().Length == 0);
        IsSqlite = relationalConnectionType.FullName == "Microsoft.EntityFrameworkCore.Sqlite.Storage.Internal.SqliteRelationalConnection"
                   || relationalConnectionType.GetInterfaces().Any(i => i.FullName == "Microsoft.EntityFrameworkCore.Sqlite.Storage.Internal.ISqliteRelationalConnection");
    }

    public static ProviderConnectionSetup For(RelationalConnection connection) =>
        ByType.GetOrAdd(connection.GetType(), static t => new ProviderConnectionSetup(t));

    public Type RelationalConnectionType { get; }

    public bool IsSqlite { get; }

    /// <summary>Whether EF enlists this provider's connections in <c>Transaction.Current</c> (EF Core SQLite does not).</summary>
    public bool SupportsAmbientTransactions(RelationalConnection connection) =>
        _supportsAmbientTransactions?.GetValue(connection) is not false;

    /// <summary>The data source EF creates this context's connections from, if the provider has one (Npgsql 9+).</summary>
    public DbDataSource? FindDataSource(RelationalConnection connection) => _dataSource?.GetValue(connection) as DbDataSource;

    /// <summary>Redoes the provider's per-connection setup on a physical connection that has not had it yet.</summary>
    public void Initialize(RelationalConnection connection, DbConnection physical)
    {
        if (_initialize is null)
        {
            if (IsSqlite)
                throw new InvalidOperationException(
                    $"{RelationalConnectionType.FullName} has no InitializeDbConnection(DbConnection) method in this EF Core version, so Covet " +
                    "cannot register EF's SQLite functions (regexp, ef_* decimal functions) on its pooled connections.");
            return;
        }
        if (Initialized.TryGetValue(physical, out var by) && by == RelationalConnectionType)
            return;
        try
        {
            _initialize.Invoke(connection, [physical]);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfoThrow(e.InnerException);
        }
        Initialized.AddOrUpdate(physical, RelationalConnectionType);
    }

    /// <summary>
    /// Callbacks EF's provider set on its own connection object (public delegate-typed properties, such as Npgsql's
    /// <c>ProvidePasswordCallback</c> or <c>SslClientAuthenticationOptionsCallback</c> from <c>UseNpgsql</c>'s options).
    /// They act when a connection opens, and Covet's physical connections are opened from the connection string alone.
    /// </summary>
    public static IReadOnlyList<string> CallbacksSetOn(DbConnection connection)
    {
        var properties = CallbackProperties.GetOrAdd(connection.GetType(), static t => t
            .GetProperties(BindingFlags.Instance | BindingFlags.Public)
            .Where(p => typeof(Delegate).IsAssignableFrom(p.PropertyType) && p.CanRead && p.GetIndexParameters().Length == 0)
            .ToArray());
        if (properties.Length == 0)
            return [];
        return properties.Where(p => p.GetValue(connection) is not null).Select(p => p.Name).ToList();
    }

    /// <summary>Closes the idle connections of a provider's own data source (<c>NpgsqlDataSource.Clear()</c>), when it has such a method.</summary>
    public static void ClearDataSource(DbDataSource dataSource)
    {
        if (dataSource.GetType().GetMethod("Clear", BindingFlags.Instance | BindingFlags.Public, Type.EmptyTypes) is not { } clear)
            return;
        try
        {
            clear.Invoke(dataSource, null);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfoThrow(e.InnerException);
        }
    }

    /// <summary>Calls the provider connection's <c>ReloadTypes</c>/<c>ReloadTypesAsync</c> when it has one (Npgsql).</summary>
    public static async ValueTask ReloadTypesAsync(DbConnection physical, bool async, CancellationToken cancellationToken)
    {
        var type = physical.GetType();
        try
        {
            if (async && type.GetMethod("ReloadTypesAsync", BindingFlags.Instance | BindingFlags.Public, [typeof(CancellationToken)]) is { } reloadAsync
                && typeof(Task).IsAssignableFrom(reloadAsync.ReturnType))
            {
                await ((Task)reloadAsync.Invoke(physical, [cancellationToken])!).ConfigureAwait(false);
            }
            else if (type.GetMethod("ReloadTypes", BindingFlags.Instance | BindingFlags.Public, Type.EmptyTypes) is { } reload)
            {
                reload.Invoke(physical, null);
            }
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfoThrow(e.InnerException);
        }
    }

    private static void ExceptionDispatchInfoThrow(Exception e) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
}
