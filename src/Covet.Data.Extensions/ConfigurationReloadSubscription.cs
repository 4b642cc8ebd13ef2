using System.Reflection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Covet.Data;

/// <summary>
/// Follows the reloads of one registration's named <see cref="CovetPoolOptions"/> (the change tokens
/// <see cref="IOptionsMonitor{TOptions}"/> follows: a bound configuration section's, and any other
/// <see cref="IOptionsChangeTokenSource{TOptions}"/> of that name) and applies what changed to the running pool with
/// <see cref="CovetDataSource.Reconfigure"/>. An invalid reload is logged (event 8001) and ignored: the pool keeps its options.
/// </summary>
/// <remarks>
/// <para>What a reload applies. The options are built as the monitor builds them (<see cref="IOptionsFactory{TOptions}"/>:
/// the bound section, then the registration's <c>configure</c> delegate and any other configure/post-configure, then the
/// validators), and the connection string's <c>Covet.*</c> keywords are applied on top, as when the pool was created: a
/// keyword keeps winning over the section, because it is part of the registration itself (written in code or in the
/// connection string an operator chose), and a reload that silently undid it would make the pool's behaviour depend on
/// whether the file had been edited since start. <see cref="CovetPoolOptions.LoggerFactory"/> and
/// <see cref="CovetPoolOptions.TimeProvider"/> are those the pool was created with (configuration cannot express them and
/// they cannot change on a running pool; a <c>configure</c> delegate that makes a new one on each run must not turn every
/// reload into a rejection). <see cref="CovetPoolOptions.PasswordProvider"/> is what the <c>configure</c> delegate sets on
/// its new run (it applies live, from the next physical connection).</para>
/// <para>Only what the reload changed is applied: each setting whose reloaded value differs from the value the
/// configuration last gave is set on a copy of the options in force, and the rest keeps its value in force. So editing
/// one setting (or another section of the same file, which fires the same change token) does not undo a resize made
/// meanwhile on the dashboard or with <see cref="CovetPools.Reconfigure(string, Action{CovetPoolOptions})"/>; a setting the
/// reload does change wins over such an edit (the last change wins). A rejected reload does not move that baseline, so a
/// later reload that fixes the file applies everything it changed since the last accepted one.</para>
/// <para>Why its own subscription rather than <see cref="IOptionsMonitor{TOptions}.OnChange"/>: when a validator fails on
/// reload, the monitor's <c>Get</c> throws before it calls any listener, so a listener would never hear of the invalid
/// reload it must log. The factory builds fresh options without the monitor's cache, so the order in which the change
/// token runs its callbacks does not matter.</para>
/// <para>Concurrency and life: reloads are handled one at a time under <see cref="_gate"/>; <see cref="Dispose"/> takes the
/// same lock to mark itself disposed, so once it returns no reload is in flight and none will reach the pool. The data
/// source disposes this first (<see cref="CovetDataSource.DisposedFirst"/>), before its pool; the token registrations are
/// disposed outside the lock (disposing one waits for its running callback, which may be waiting for the lock).</para>
/// </remarks>
internal sealed class ConfigurationReloadSubscription : IDisposable
{
    private static readonly PropertyInfo[] Settings = typeof(CovetPoolOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanRead && p.CanWrite).ToArray();

    private readonly Lock _gate = new();
    private readonly CovetDataSource _dataSource;
    private readonly string _connectionString;
    private readonly string _optionsName;
    private readonly IOptionsFactory<CovetPoolOptions> _factory;
    private readonly ILoggerFactory? _loggerFactory;   // fixed for the pool's life, as its clock
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly List<IDisposable> _registrations = [];
    private CovetPoolOptions _applied;   // what the configuration (keywords applied) gave at creation or at the last accepted reload
    private bool _disposed;

    /// <param name="dataSource">The registration's data source.</param>
    /// <param name="connectionString">Its connection string, whose Covet keywords win over the configuration.</param>
    /// <param name="created">The options the data source was created from (before its keywords were applied).</param>
    /// <param name="optionsName">The registration's options name.</param>
    /// <param name="factory">Builds the options as the monitor does.</param>
    /// <param name="tokenSources">Every change token source of <see cref="CovetPoolOptions"/>; those of <paramref name="optionsName"/> are followed.</param>
    public ConfigurationReloadSubscription(CovetDataSource dataSource, string connectionString, CovetPoolOptions created, string optionsName,
        IOptionsFactory<CovetPoolOptions> factory, IEnumerable<IOptionsChangeTokenSource<CovetPoolOptions>> tokenSources)
    {
        _dataSource = dataSource;
        _connectionString = connectionString;
        _optionsName = optionsName;
        _factory = factory;
        _loggerFactory = created.LoggerFactory;
        _timeProvider = created.TimeProvider;
        _logger = _loggerFactory?.CreateLogger("Covet.Data.Configuration") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _applied = Configured(created);
        foreach (var source in tokenSources)
        {
            if (string.Equals(source.Name ?? Options.DefaultName, optionsName, StringComparison.Ordinal))
                _registrations.Add(ChangeToken.OnChange(source.GetChangeToken, OnReload));
        }
    }

    /// <summary>Whether any change token is followed (none when nothing configures this registration's options from a reloadable source).</summary>
    public bool FollowsAny => _registrations.Count > 0;

    private void OnReload()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            CovetPoolOptions next;
            try
            {
                next = Configured(_factory.Create(_optionsName));
            }
            catch (OptionsValidationException e)
            {
                ReloadLog.Ignored(_logger, _dataSource.PoolName, string.Join("; ", e.Failures));
                return;
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or CovetConfigurationException)
            {
                // The binder's "failed to convert" (a value of the wrong type): it names the key and the type.
                ReloadLog.Ignored(_logger, _dataSource.PoolName, e.Message);
                return;
            }

            var target = _dataSource.Options;   // a copy of the settings in force
            var changed = false;
            foreach (var setting in Settings)
            {
                var value = setting.GetValue(next);
                if (!Equals(setting.GetValue(_applied), value))
                {
                    setting.SetValue(target, value);
                    changed = true;
                }
            }
            if (!changed)
                return;   // another section of the same source reloaded, or the same values did

            try
            {
                _dataSource.Reconfigure(target);   // the pool logs the old → new values (event 7004)
                _applied = next;
            }
            catch (CovetConfigurationException e)
            {
                ReloadLog.Ignored(_logger, _dataSource.PoolName, e.Message);
            }
        }
    }

    // The configuration's options as the pool would take them: the creation's logger factory and clock, keywords on top.
    private CovetPoolOptions Configured(CovetPoolOptions options)
    {
        var copy = options.Clone();
        copy.LoggerFactory = _loggerFactory;
        copy.TimeProvider = _timeProvider;
        return CovetConnectionStringKeywords.Split(_connectionString, copy).Options;
    }

    /// <summary>Stops following reloads; once it returns, no reload is being applied and none will be.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        foreach (var registration in _registrations)
            registration.Dispose();
    }
}

internal static partial class ReloadLog
{
    [LoggerMessage(EventId = 8001, Level = LogLevel.Warning, Message = "Configuration reload ignored for pool {PoolName}, which keeps its options: {Reason}")]
    public static partial void Ignored(ILogger logger, string poolName, string reason);
}
