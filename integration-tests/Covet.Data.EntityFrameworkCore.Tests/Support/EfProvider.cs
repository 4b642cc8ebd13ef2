using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Covet.Data.EntityFrameworkCore.Tests.Model;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Covet.Data.EntityFrameworkCore.Tests;

public enum ProviderKind
{
    Postgres,
    Sqlite,
    MySql,
    PomeloMySql,
}

/// <summary>
/// One EF Core provider and a database of its own for one test (unique name or file; created by the test through EF,
/// dropped on dispose), with what provider-neutral rows need: the provider's <c>Use*</c>, the server's view of the
/// test's sessions, and a way to kill them.
/// </summary>
/// <remarks>Shared by the EF Core 10 test project and the Pomelo (EF Core 9) one: each implements <see cref="Create"/>
/// with the providers it references (EfProvider.Providers.cs, PomeloProvider.cs).</remarks>
internal abstract partial class EfProvider : IAsyncDisposable
{
    // Physical connections EF was given while borrowed (ConnectionOpened sees the provider's own connection).
    private readonly ConcurrentDictionary<DbConnection, byte> _physicalConnections = new();

    protected EfProvider(string label)
    {
        var clean = new string(label.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        DatabaseName = $"covet_ef_{(clean.Length > 24 ? clean[..24] : clean)}_{Guid.NewGuid().ToString("N")[..8]}";
        Recorder = new PhysicalConnectionRecorder(this);
    }

    public abstract ProviderKind Kind { get; }

    /// <summary>This test's database (or SQLite file name stem).</summary>
    public string DatabaseName { get; }

    /// <summary>The EF connection string of this test's database.</summary>
    public abstract string ConnectionString { get; }

    /// <summary>Whether EF enlists this provider in System.Transactions (EF Core SQLite does not).</summary>
    public virtual bool SupportsAmbientTransactions => true;

    /// <summary>A quoted identifier in this provider's SQL.</summary>
    public virtual string Q(string identifier) => $"\"{identifier}\"";

    /// <summary>SQL that sleeps about <paramref name="seconds"/> on the server, returning one row.</summary>
    public abstract string SleepSql(double seconds);

    /// <summary>The provider's <c>Use*</c> for this test's database.</summary>
    public abstract DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, bool retryOnFailure = false);

    /// <summary>The provider's <c>Use*</c> with a connection object the application owns.</summary>
    public abstract DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, DbConnection connection);

    /// <summary>A new, closed provider connection to this test's database.</summary>
    public abstract DbConnection CreateProviderConnection();

    /// <summary>The server's id of the session the context's connection is on (SQLite: the physical connection object).</summary>
    public abstract Task<object> SessionIdAsync(DbContext context);

    /// <summary>Connections the server has open to this test's database, or null without a server (SQLite).</summary>
    public abstract Task<int?> ServerConnectionsAsync();

    /// <summary>Kills every session of this test's database server-side (SQLite: closes every physical connection under Covet).</summary>
    public abstract Task KillAllSessionsAsync();

    /// <summary>Kills the session of the context's open connection from a separate plain connection (SQLite: closes it underneath).</summary>
    public abstract Task KillSessionAsync(DbContext context);

    protected IReadOnlyCollection<DbConnection> PhysicalConnections => _physicalConnections.Keys.ToList();

    /// <summary>Records the provider connections EF is given (the application's interceptors see them in ConnectionOpened).</summary>
    public IInterceptor Recorder { get; }

    /// <summary>Options for <typeparamref name="TContext"/>: the provider, then <c>UseCovetPool</c> (unless <paramref name="covet"/> is false).</summary>
    public DbContextOptions<TContext> Options<TContext>(
        Action<CovetPoolOptions>? pool = null, bool retryOnFailure = false, Action<DbContextOptionsBuilder>? configure = null, bool covet = true)
        where TContext : DbContext
    {
        var builder = new DbContextOptionsBuilder<TContext>();
        Configure(builder, pool, retryOnFailure, configure, covet);
        return builder.Options;
    }

    /// <summary>The same configuration on a builder (for AddDbContextPool).</summary>
    public void Configure(DbContextOptionsBuilder builder, Action<CovetPoolOptions>? pool = null, bool retryOnFailure = false,
        Action<DbContextOptionsBuilder>? configure = null, bool covet = true)
    {
        UseProvider(builder, retryOnFailure);
        builder.AddInterceptors(Recorder);
        if (covet)
            builder.UseCovetPool(o =>
            {
                o.PoolName = DatabaseName;
                o.AcquireTimeout = TimeSpan.FromSeconds(20);
                pool?.Invoke(o);
            });
        configure?.Invoke(builder);
    }

    public BlogContext Blogs(Action<CovetPoolOptions>? pool = null, bool retryOnFailure = false) => new(Options<BlogContext>(pool, retryOnFailure));

    public abstract ValueTask DisposeAsync();

    /// <summary>The provider of <paramref name="kind"/>, for a test named <paramref name="label"/>; implemented by each test project.</summary>
    public static partial EfProvider Create(ProviderKind kind, string label);

    private sealed class PhysicalConnectionRecorder(EfProvider provider) : DbConnectionInterceptor
    {
        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) =>
            provider._physicalConnections.TryAdd(connection, 0);

        public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            provider._physicalConnections.TryAdd(connection, 0);
            return Task.CompletedTask;
        }
    }
}
