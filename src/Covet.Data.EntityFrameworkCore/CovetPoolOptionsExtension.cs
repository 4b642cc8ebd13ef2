using System.Globalization;
using Covet.Data.EntityFrameworkCore.Internal;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Covet.Data.EntityFrameworkCore;

/// <summary>
/// The options extension <c>UseCovetPool</c> adds. Applications use
/// <see cref="CovetDbContextOptionsBuilderExtensions.UseCovetPool(Microsoft.EntityFrameworkCore.DbContextOptionsBuilder, Action{CovetPoolOptions}?)"/>
/// rather than this type.
/// </summary>
public sealed class CovetPoolOptionsExtension : IDbContextOptionsExtension
{
    private DbContextOptionsExtensionInfo? _info;

    /// <summary>An extension with Covet's default pool settings.</summary>
    public CovetPoolOptionsExtension() : this(new CovetPoolOptions())
    {
    }

    /// <summary>An extension with the given pool settings (copied: later changes to <paramref name="options"/> have no effect).</summary>
    /// <exception cref="CovetConfigurationException">A setting is out of range.</exception>
    public CovetPoolOptionsExtension(CovetPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Key = new CovetPoolOptionsKey(options);
    }

    /// <summary>The pool settings (a copy: changing it has no effect).</summary>
    public CovetPoolOptions PoolOptions => Key.Options.Clone();

    internal CovetPoolOptionsKey Key { get; }

    /// <inheritdoc />
    public DbContextOptionsExtensionInfo Info => _info ??= new ExtensionInfo(this);

    /// <inheritdoc />
    public void ApplyServices(IServiceCollection services)
    {
        services.AddSingleton<IInterceptor>(CovetConnectionInterceptor.Instance);
        services.AddScoped<CovetContextConnection>();
        services.AddScoped<IResettableService>(static p => p.GetRequiredService<CovetContextConnection>());

        // DatabaseFacade (EnsureDeleted) and the migrators resolve IDatabaseCreator; the provider's creator stays the
        // IRelationalDatabaseCreator everything else gets. Whether the provider registered its services before or after
        // this extension, ours is the one IDatabaseCreator registration (EF's own is a TryAdd).
        for (var i = services.Count - 1; i >= 0; i--)
            if (services[i].ServiceType == typeof(IDatabaseCreator))
                services.RemoveAt(i);
        services.AddScoped<IDatabaseCreator>(static p =>
            new CovetDatabaseCreator(p.GetRequiredService<IRelationalDatabaseCreator>(), p.GetRequiredService<CovetContextConnection>()));
    }

    /// <inheritdoc />
    public void Validate(IDbContextOptions options)
    {
        if (!options.Extensions.OfType<RelationalOptionsExtension>().Any())
            throw new InvalidOperationException(
                "UseCovetPool needs a relational database provider: configure one first, e.g. options.UseNpgsql(connectionString).UseCovetPool().");
        RelationalConnectionAccess.EnsureSupported();
    }

    private sealed class ExtensionInfo(CovetPoolOptionsExtension extension) : DbContextOptionsExtensionInfo(extension)
    {
        private new CovetPoolOptionsExtension Extension => (CovetPoolOptionsExtension)base.Extension;

        public override bool IsDatabaseProvider => false;

        public override string LogFragment =>
            string.Create(CultureInfo.InvariantCulture, $"CovetPool=(MaxPoolSize={Extension.Key.Options.MaxPoolSize}) ");

        // The services registered do not depend on the pool settings (those are read per context from its options),
        // so every Covet-pooled context of a provider shares one internal service provider.
        public override int GetServiceProviderHashCode() => 0;

        public override bool ShouldUseSameServiceProvider(DbContextOptionsExtensionInfo other) => other is ExtensionInfo;

        public override void PopulateDebugInfo(IDictionary<string, string> debugInfo) =>
            debugInfo["Covet:PoolSettings"] = Extension.Key.GetHashCode().ToString(CultureInfo.InvariantCulture);
    }
}
