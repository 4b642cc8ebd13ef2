using System.Data.Common;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Covet.Data;

/// <summary>Registers Covet data sources the way .NET apps expect (as Npgsql's <c>AddNpgsqlDataSource</c> does).</summary>
public static class CovetServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="CovetDataSource"/> (also as <see cref="DbDataSource"/>) and a
    /// <see cref="CovetDbConnection"/> / <see cref="DbConnection"/> created from it with <paramref name="connectionLifetime"/>.
    /// Pool options are bound from <paramref name="configuration"/> when given (keys are <see cref="CovetPoolOptions"/>
    /// property names; time values as TimeSpan strings such as <c>00:00:30</c>), then <paramref name="configure"/> runs;
    /// they are validated when the app starts.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="provider">The provider's own factory, e.g. <c>NpgsqlFactory.Instance</c>.</param>
    /// <param name="connectionString">The provider connection string (Covet keywords allowed).</param>
    /// <param name="configuration">A configuration section holding pool options, e.g. <c>Configuration.GetSection("Covet")</c>.</param>
    /// <param name="configure">Further option changes in code.</param>
    /// <param name="connectionLifetime">Lifetime of the registered connections. Default transient.</param>
    /// <param name="serviceKey">Registers keyed services for apps with several databases. Default none.</param>
    public static IServiceCollection AddCovetDataSource(
        this IServiceCollection services,
        DbProviderFactory provider,
        string connectionString,
        IConfiguration? configuration = null,
        Action<CovetPoolOptions>? configure = null,
        ServiceLifetime connectionLifetime = ServiceLifetime.Transient,
        object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(connectionString);
        var optionsName = serviceKey?.ToString() ?? Options.DefaultName;

        var optionsBuilder = services.AddOptions<CovetPoolOptions>(optionsName);
        if (configuration is not null)
            optionsBuilder.Bind(configuration);
        if (configure is not null)
            optionsBuilder.Configure(configure);
        optionsBuilder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CovetPoolOptions>, CovetPoolOptionsValidator>());

        CovetDataSource Create(IServiceProvider sp)
        {
            var options = sp.GetRequiredService<IOptionsMonitor<CovetPoolOptions>>().Get(optionsName).Clone();
            options.LoggerFactory ??= sp.GetService<ILoggerFactory>();
            return CovetDataSource.Create(provider, connectionString, options);
        }

        if (serviceKey is null)
        {
            services.TryAddSingleton(Create);
            services.TryAddSingleton<DbDataSource>(sp => sp.GetRequiredService<CovetDataSource>());
            services.TryAdd(new ServiceDescriptor(typeof(CovetDbConnection), sp => sp.GetRequiredService<CovetDataSource>().CreateConnection(), connectionLifetime));
            services.TryAdd(new ServiceDescriptor(typeof(DbConnection), sp => sp.GetRequiredService<CovetDbConnection>(), connectionLifetime));
        }
        else
        {
            services.TryAddKeyedSingleton(serviceKey, (sp, _) => Create(sp));
            services.TryAddKeyedSingleton<DbDataSource>(serviceKey, (sp, key) => sp.GetRequiredKeyedService<CovetDataSource>(key));
            services.TryAdd(new ServiceDescriptor(typeof(CovetDbConnection), serviceKey, (sp, key) => sp.GetRequiredKeyedService<CovetDataSource>(key).CreateConnection(), connectionLifetime));
            services.TryAdd(new ServiceDescriptor(typeof(DbConnection), serviceKey, (sp, key) => sp.GetRequiredKeyedService<CovetDbConnection>(key), connectionLifetime));
        }
        return services;
    }
}

/// <summary>Validates <see cref="CovetPoolOptions"/> at start-up, failing with the message that names the wrong setting.</summary>
internal sealed class CovetPoolOptionsValidator : IValidateOptions<CovetPoolOptions>
{
    public ValidateOptionsResult Validate(string? name, CovetPoolOptions options)
    {
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (CovetConfigurationException e)
        {
            return ValidateOptionsResult.Fail(e.Message);
        }
    }
}
