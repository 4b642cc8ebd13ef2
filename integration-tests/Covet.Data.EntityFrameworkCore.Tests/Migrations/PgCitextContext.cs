using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covet.Data.EntityFrameworkCore.Tests.Migrations;

public class PgUser
{
    public int Id { get; set; }
    public string Email { get; set; } = "";
}

/// <summary>
/// PostgreSQL only: a migration that creates an extension (citext), after which Npgsql's migrator reloads the
/// connection's types (<c>NpgsqlConnection.ReloadTypes</c>, on the connection object it took from EF).
/// </summary>
public class PgCitextContext(DbContextOptions<PgCitextContext> options) : DbContext(options)
{
    public DbSet<PgUser> Users => Set<PgUser>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => PgCitextModel.Build(modelBuilder);
}

internal static class PgCitextModel
{
    public static void Build(ModelBuilder modelBuilder)
    {
        modelBuilder.HasPostgresExtension("citext");
        modelBuilder.Entity<PgUser>(b =>
        {
            b.ToTable("Users");
            b.HasKey(u => u.Id);
            b.Property(u => u.Id).ValueGeneratedNever();
            b.Property(u => u.Email).HasColumnType("citext").IsRequired();
        });
    }
}

[DbContext(typeof(PgCitextContext))]
[Migration("20260103000000_CreateUsersWithCitext")]
public sealed class CreateUsersWithCitext : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AlterDatabase().Annotation("Npgsql:PostgresExtension:citext", ",,");
        migrationBuilder.CreateTable(
            name: "Users",
            columns: table => new
            {
                Id = table.Column<int>(type: "integer", nullable: false),
                Email = table.Column<string>(type: "citext", nullable: false),
            },
            constraints: table => table.PrimaryKey("PK_Users", x => x.Id));
    }

    protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable(name: "Users");
}

[DbContext(typeof(PgCitextContext))]
public sealed class PgCitextContextModelSnapshot : ModelSnapshot
{
    protected override void BuildModel(ModelBuilder modelBuilder)
    {
        modelBuilder.HasAnnotation("ProductVersion", "10.0.15");
        PgCitextModel.Build(modelBuilder);
    }
}
