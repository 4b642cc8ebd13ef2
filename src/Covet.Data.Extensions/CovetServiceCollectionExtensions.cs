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
    /// they are validated when the app starts. Connection-string keywords (<c>Covet.MaxPoolSize=50</c>) win over both.
    /// </summary>
    /// <remarks>
    /// The pool follows reloads of its options (<see cref="IOptionsMonitor{TOptions}"/>: e.g. <c>appsettings.json</c> added with
    /// <c>reloadOnChange: true</c>): the settings a reload changes are applied to the running pool with
    /// <see cref="CovetDataSource.Reconfigure"/>, which logs them with old and new values (event 7004); settings it does not
    /// change keep the value in force (a resize made on the dashboard stays). Connection-string keywords keep winning over
    /// the section; the pool's <see cref="CovetPoolOptions.LoggerFactory"/> and <see cref="CovetPoolOptions.TimeProvider"/>
    /// stay those it was created with; <paramref name="configure"/> runs again on each reload. A reload that fails
    /// validation, or changes a setting that cannot change on a running pool (<see cref="CovetPoolOptions.PoolName"/>,
    /// <see cref="CovetPoolOptions.ResetSessionOnReturn"/>, <see cref="CovetPoolOptions.ResetQuery"/>), is logged as a
    /// warning naming the setting (event 8001, category <c>Covet.Data.Configuration</c>) and ignored: the pool keeps its
    /// options. The subscription ends when the data source is disposed (with the service provider).
    /// </remarks>
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
            var dataSource = CovetDataSource.Create(provider, connectionString, options);
            var reloads = new ConfigurationReloadSubscription(dataSource, connectionString, options, optionsName,
                sp.GetRequiredService<IOptionsFactory<CovetPoolOptions>>(), sp.GetServices<IOptionsChangeTokenSource<CovetPoolOptions>>());
            if (reloads.FollowsAny)
                dataSource.DisposedFirst = reloads;   // unsubscribed before the pool is disposed (with the service provider)
            return dataSource;
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
