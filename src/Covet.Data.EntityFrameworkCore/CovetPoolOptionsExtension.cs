using System.Globalization;
using Covet.Data.EntityFrameworkCore.Internal;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
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
        // Pools over the data sources EF builds itself: owned by this internal service provider, like those data sources.
        services.AddSingleton<CovetEfDataSources>();
        services.AddScoped<IResettableService>(static p => p.GetRequiredService<CovetContextConnection>());

        // DatabaseFacade (EnsureCreated/EnsureDeleted) and the migrators resolve IDatabaseCreator; the provider's creator
        // stays the IRelationalDatabaseCreator everything else gets. The provider's Use* ran first (Validate checks the
        // order), so EF's IDatabaseCreator registration is there to replace.
        for (var i = services.Count - 1; i >= 0; i--)
            if (services[i].ServiceType == typeof(IDatabaseCreator))
                services.RemoveAt(i);
        services.AddScoped<IDatabaseCreator>(static p =>
            new CovetDatabaseCreator(p.GetRequiredService<IRelationalDatabaseCreator>(), p.GetRequiredService<CovetContextConnection>()));

        // The provider's migrator (registered by its Use* before this extension: Validate checks the order), wrapped.
        var migrator = services.LastOrDefault(d => d.ServiceType == typeof(IMigrator));
        if (migrator is not null)
        {
            services.Remove(migrator);
            services.AddScoped<IMigrator>(p => new CovetMigrator(
                CreateInner<IMigrator>(p, migrator),
                p.GetRequiredService<IRelationalConnection>(),
                p.GetRequiredService<IRelationalDatabaseCreator>(),
                p.GetRequiredService<CovetContextConnection>()));
        }
    }

    private static T CreateInner<T>(IServiceProvider provider, ServiceDescriptor descriptor) where T : class =>
        (T)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(provider)
            ?? ActivatorUtilities.CreateInstance(provider, descriptor.ImplementationType!));

    /// <inheritdoc />
    public void Validate(IDbContextOptions options)
    {
        var extensions = options.Extensions.ToList();
        var provider = extensions.FindIndex(e => e is RelationalOptionsExtension);
        if (provider < 0)
            throw new InvalidOperationException(
                "UseCovetPool needs a relational database provider: configure one first, e.g. options.UseNpgsql(connectionString).UseCovetPool().");
        if (extensions.IndexOf(this) < provider)
            throw new InvalidOperationException(
                "Call UseCovetPool after the database provider's Use* method (options.UseNpgsql(connectionString).UseCovetPool()): " +
                "it wraps services the provider registers.");
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
